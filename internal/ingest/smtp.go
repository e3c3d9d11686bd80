package ingest

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bounced/bounced/internal/parse"
)

// SMTP receiver defaults.
const (
	SMTPMaxRecipientsDefault  = 50
	SMTPMaxConnectionsDefault = 100
	SMTPTimeoutDefault        = time.Minute
	LMTPSocketModeDefault     = 0o660
)

// SMTPConfig describes an SMTP or LMTP receiver for the bounce domain.
type SMTPConfig struct {
	// Name labels the receiver in metrics and logs ("smtp", "lmtp").
	Name string
	// LMTP serves LMTP (RFC 2033) instead of SMTP, usually on a unix
	// socket for an MTA's transport.
	LMTP bool
	// Network is "tcp" or "unix"; Addr the address or socket path.
	Network string
	Addr    string
	// SocketMode is the permission of a unix socket.
	SocketMode fs.FileMode
	// Hostname is the name in the greeting.
	Hostname string
	// Domains and Addresses are what mail is accepted for; any other
	// recipient is refused with 550 5.1.1. Nothing is ever relayed.
	Domains         []string
	Addresses       []string
	MaxMessageBytes int64
	MaxRecipients   int
	// MaxConnections caps concurrent connections; more are told 421.
	MaxConnections int
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	// TLSConfig, when set, offers STARTTLS.
	TLSConfig      *tls.Config
	UnhealthyAfter time.Duration
	// VERP decodes the original recipient from the envelope recipient.
	// A zero Prefix turns it off.
	VERP parse.VERP
}

// SMTPDeps are what the receiver calls.
type SMTPDeps struct {
	Ingester EnvelopeIngester
	Logger   *slog.Logger
	Metrics  *Metrics
	NowFunc  func() time.Time
}

// Receiver accepts bounces by SMTP or LMTP for configured domains and
// addresses. It answers 250 only once the message is committed, and
// 451 4.3.0 when it cannot be, so the sending MTA retries.
type Receiver struct {
	*monitor
	cfg       SMTPConfig
	deps      SMTPDeps
	logger    *slog.Logger
	domains   map[string]bool
	addresses map[string]bool
	server    *smtp.Server

	mu sync.Mutex
	ln net.Listener
	// base is the context of message commits; it outlives Run's ctx so a
	// shutdown lets in-flight messages finish.
	base context.Context
}

// NewReceiver checks cfg and returns a receiver ready to Listen and Run.
func NewReceiver(cfg SMTPConfig, deps SMTPDeps) (*Receiver, error) {
	if cfg.Name == "" {
		cfg.Name = "smtp"
		if cfg.LMTP {
			cfg.Name = "lmtp"
		}
	}
	cfg.Network = cmp.Or(cfg.Network, "tcp")
	cfg.SocketMode = cmp.Or(cfg.SocketMode, LMTPSocketModeDefault)
	cfg.MaxMessageBytes = cmp.Or(max(cfg.MaxMessageBytes, 0), MaxMessageBytesDefault)
	cfg.MaxRecipients = cmp.Or(max(cfg.MaxRecipients, 0), SMTPMaxRecipientsDefault)
	cfg.MaxConnections = cmp.Or(max(cfg.MaxConnections, 0), SMTPMaxConnectionsDefault)
	cfg.ReadTimeout = cmpDur(cfg.ReadTimeout, SMTPTimeoutDefault)
	cfg.WriteTimeout = cmpDur(cfg.WriteTimeout, SMTPTimeoutDefault)
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
		cfg.Hostname = cmp.Or(cfg.Hostname, "localhost")
	}
	r := &Receiver{cfg: cfg, deps: deps, domains: map[string]bool{}, addresses: map[string]bool{}}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("ingest: %s receiver: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.Addr == "":
		return nil, bad("no listen address")
	case cfg.Network != "tcp" && cfg.Network != "unix":
		return nil, bad("network %q is not tcp or unix", cfg.Network)
	case len(cfg.Domains) == 0 && len(cfg.Addresses) == 0:
		return nil, bad("no accepted domains or addresses: it would accept mail for nobody")
	case deps.Ingester == nil:
		return nil, bad("Ingester is required")
	}
	for _, d := range cfg.Domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, "@ ") {
			return nil, bad("accepted domain %q is not a domain", d)
		}
		r.domains[d] = true
	}
	for _, a := range cfg.Addresses {
		norm, err := parse.NormalizeAddress(a)
		if err != nil {
			return nil, bad("accepted address %q: %v", a, err)
		}
		r.addresses[parse.AddressKey(norm)] = true
	}
	r.logger = cmp.Or(deps.Logger, slog.New(slog.DiscardHandler)).With("component", "ingest."+cfg.Name, "mailbox", cfg.Name)
	r.monitor = newMonitor(cfg.Name, deps.Metrics, deps.NowFunc, cfg.UnhealthyAfter)
	s := smtp.NewServer(smtp.BackendFunc(r.newSession))
	s.LMTP = cfg.LMTP
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = cfg.MaxRecipients
	s.ReadTimeout, s.WriteTimeout = cfg.ReadTimeout, cfg.WriteTimeout
	s.TLSConfig = cfg.TLSConfig
	s.ErrorLog = slogPrinter{r.logger}
	r.server = s
	return r, nil
}

// Name returns the receiver's name.
func (r *Receiver) Name() string { return r.cfg.Name }

// Listen binds the address (replacing a stale unix socket) and returns it.
func (r *Receiver) Listen() (net.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return r.ln.Addr(), nil
	}
	if r.cfg.Network == "unix" {
		if fi, err := os.Lstat(r.cfg.Addr); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			_ = os.Remove(r.cfg.Addr)
		}
	}
	ln, err := net.Listen(r.cfg.Network, r.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ingest: %s receiver: %w", r.cfg.Name, err)
	}
	if r.cfg.Network == "unix" {
		if err := os.Chmod(r.cfg.Addr, r.cfg.SocketMode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("ingest: %s receiver: %w", r.cfg.Name, err)
		}
	}
	r.ln = &limitListener{Listener: ln, slots: make(chan struct{}, r.cfg.MaxConnections), logger: r.logger}
	return ln.Addr(), nil
}

// Run serves until ctx ends, then stops accepting and waits up to
// drain for sessions in progress to finish their messages.
func (r *Receiver) Run(ctx context.Context, drain time.Duration) error {
	if _, err := r.Listen(); err != nil {
		return err
	}
	r.mu.Lock()
	ln := r.ln
	r.base = context.WithoutCancel(ctx)
	r.mu.Unlock()
	r.setState(StateListening)
	r.logger.InfoContext(ctx, "receiver listening", "addr", ln.Addr().String(), "lmtp", r.cfg.LMTP, "starttls", r.cfg.TLSConfig != nil)
	errc := make(chan error, 1)
	go func() { errc <- r.server.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmpDur(drain, 30*time.Second))
		if serr := r.server.Shutdown(sctx); serr != nil {
			r.logger.WarnContext(ctx, "receiver shutdown: closing sessions still open", "error", serr)
			_ = r.server.Close()
		}
		cancel()
		err = <-errc // nil once closed
	}
	r.setState(StateStopped)
	if r.cfg.Network == "unix" {
		_ = os.Remove(r.cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("ingest: %s receiver: %w", r.cfg.Name, err)
	}
	return nil
}

// accepts reports whether mail for the normalised address addr is ours.
func (r *Receiver) accepts(addr string) bool {
	key := parse.AddressKey(addr)
	return r.addresses[key] || r.domains[parse.AddressDomain(key)]
}

func (r *Receiver) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{r: r}, nil
}

// Replies. Each is an *smtp.SMTPError: go-smtp turns any other error
// into a permanent 554.
var (
	errTryLater = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local problem, message not stored; try again later"}
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such mailbox here; this server accepts bounces for its own domains only"}
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
		Message: "Bad recipient address syntax"}
)

// session is one SMTP transaction at a time on one connection.
type session struct {
	r     *Receiver
	from  string
	rcpts []string
}

func (s *session) Reset() {
	s.from, s.rcpts = "", nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := parse.NormalizeAddress(to)
	if err != nil {
		return errBadAddress
	}
	if !s.r.accepts(addr) {
		// The domain only: never an address at info.
		s.r.logger.Info("recipient refused", "domain", parse.AddressDomain(parse.AddressKey(addr)))
		return errNoSuchUser
	}
	s.rcpts = append(s.rcpts, addr)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if errors.Is(err, smtp.ErrDataTooLarge) {
		s.r.count(OutcomeTooLarge)
		return smtp.ErrDataTooLarge
	}
	if err != nil {
		return errTryLater
	}
	s.r.mu.Lock()
	base := s.r.base
	s.r.mu.Unlock()
	if base == nil {
		base = context.Background()
	}
	ctx, cancel := context.WithTimeout(base, s.r.cfg.WriteTimeout)
	defer cancel()
	raw = withEnvelopeTo(raw, s.r.cfg.VERP, s.rcpts)
	env := Envelope{
		Source: s.r.cfg.Name, Provider: s.r.cfg.Name, MailFrom: s.from, RcptTo: s.rcpts, VERP: s.r.cfg.VERP,
	}
	out, err := s.r.deps.Ingester.IngestEnvelope(ctx, env, raw)
	if err != nil {
		s.r.count(OutcomeFailed)
		s.r.failed()
		s.r.logger.ErrorContext(ctx, "message not stored; answered 451", "error", err)
		return errTryLater
	}
	s.r.countOutcome(out)
	s.r.succeeded()
	s.r.logger.DebugContext(ctx, "message recorded", "message_id", out.Message.ID, "created", out.Created, "events", out.Recorded)
	return nil
}

// limitListener turns away connections over the limit with a 421.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	logger *slog.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.logger.Warn("too many connections; turning one away", "limit", cap(l.slots))
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, "421 4.7.0 Too many connections, try again later\r\n")
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// slogPrinter sends go-smtp's own log lines to the logger.
type slogPrinter struct{ logger *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.logger.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (p slogPrinter) Println(v ...any) {
	p.logger.Warn(strings.TrimSpace(fmt.Sprintln(v...)))
}

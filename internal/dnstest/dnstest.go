// Package dnstest runs a small authoritative DNS server on 127.0.0.1 over
// UDP for tests (RFC 1035 messages, built and parsed with
// golang.org/x/net/dns/dnsmessage): MX records for the names it is
// given, NXDOMAIN for the rest, SERVFAIL or silence for names told to
// fail, and answers held back until the test releases them.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server is a running DNS server. Its zone may change while it runs.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string

	conn net.PacketConn
	mu   sync.Mutex
	mx   map[string][]string // name → MX hosts, most preferred first
	fail map[string]bool     // SERVFAIL
	drop map[string]bool     // never answered
	hold map[string]bool     // answered once released
	held []heldQuery
	seen map[string]int // queries received, by name
	// inflight counts distinct names queried and not yet answered;
	// maxInflight is the most there ever were at once.
	inflight, maxInflight int
	pending               map[string]bool
}

type heldQuery struct {
	addr net.Addr
	msg  dnsmessage.Message
}

// Start runs a server until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dnstest: listen: %v", err)
	}
	s := &Server{Addr: conn.LocalAddr().String(), conn: conn, mx: map[string][]string{}, fail: map[string]bool{},
		drop: map[string]bool{}, hold: map[string]bool{}, seen: map[string]int{}, pending: map[string]bool{}}
	done := make(chan struct{})
	go func() { defer close(done); s.serve() }()
	tb.Cleanup(func() { conn.Close(); <-done })
	return s
}

// Resolver returns a pure-Go resolver that asks only s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// MX makes name's MX records hosts, preference 10, 20, ... in order, and
// name answered at once.
func (s *Server) MX(name string, hosts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := fqdn(name)
	s.mx[n] = hosts
	delete(s.fail, n)
	delete(s.drop, n)
}

// Fail makes queries for name answer SERVFAIL.
func (s *Server) Fail(name string) { s.set(s.fail, name) }

// Drop makes queries for name go unanswered.
func (s *Server) Drop(name string) { s.set(s.drop, name) }

// Hold makes queries for name wait for Release (call it after MX).
func (s *Server) Hold(name string) { s.set(s.hold, name) }

func (s *Server) set(m map[string]bool, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m[fqdn(name)] = true
}

// Release answers the oldest held query, if any, and reports whether
// there was one.
func (s *Server) Release() bool {
	s.mu.Lock()
	if len(s.held) == 0 {
		s.mu.Unlock()
		return false
	}
	q := s.held[0]
	s.held = s.held[1:]
	s.mu.Unlock()
	s.answer(q.addr, q.msg)
	return true
}

// Queries returns how many queries for name arrived.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[fqdn(name)]
}

// Held returns how many queries wait for Release.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// MaxInflight returns the most distinct names that were queried and not
// yet answered at once.
func (s *Server) MaxInflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

func (s *Server) serve() {
	buf := make([]byte, 65535)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var msg dnsmessage.Message
		if msg.Unpack(buf[:n]) != nil || len(msg.Questions) != 1 {
			continue
		}
		name := strings.ToLower(msg.Questions[0].Name.String())
		s.mu.Lock()
		s.seen[name]++
		if !s.pending[name] {
			s.pending[name] = true
			s.inflight++
			s.maxInflight = max(s.maxInflight, s.inflight)
		}
		drop, hold := s.drop[name], s.hold[name]
		if hold {
			s.held = append(s.held, heldQuery{addr, msg})
		}
		s.mu.Unlock()
		if !drop && !hold {
			s.answer(addr, msg)
		}
	}
}

// answer sends the reply to msg.
func (s *Server) answer(addr net.Addr, msg dnsmessage.Message) {
	q := msg.Questions[0]
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	hosts, found := s.mx[name]
	fail := s.fail[name]
	if s.pending[name] {
		delete(s.pending, name)
		s.inflight--
	}
	s.mu.Unlock()
	hdr := dnsmessage.Header{ID: msg.ID, Response: true, Authoritative: true, RecursionDesired: msg.RecursionDesired,
		RecursionAvailable: true}
	switch {
	case fail:
		hdr.RCode = dnsmessage.RCodeServerFailure
	case !found:
		hdr.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), hdr)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if !fail && q.Type == dnsmessage.TypeMX {
		for i, h := range hosts {
			mx, err := dnsmessage.NewName(fqdn(h))
			if err != nil {
				continue
			}
			_ = b.MXResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300},
				dnsmessage.MXResource{Pref: uint16(10 * (i + 1)), MX: mx})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return
	}
	_, _ = s.conn.WriteTo(out, addr)
}

package ingest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// dovecot is a real Dovecot IMAP server run for one test, with a
// throwaway configuration, passdb and mail store under a temp dir.
type dovecot struct {
	Host     string
	Port     int // plain text and STARTTLS
	TLSPort  int // implicit TLS, when started with TLS
	User     string
	Password string
	// TLSConfig trusts the test CA that signed the server's certificate.
	TLSConfig *tls.Config
	dir       string
}

// startDovecot runs Dovecot on free loopback ports until the test ends.
// As root the mail processes run as nobody, as Dovecot refuses root.
func startDovecot(t testing.TB, withTLS bool) *dovecot {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("dovecot is not installed (Debian: apt-get install dovecot-imapd): %v", err)
		}
	}
	dir := t.TempDir()
	// Dovecot's unprivileged processes must reach the directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &dovecot{Host: "127.0.0.1", User: "bounces", Password: "s3cret-" + strconv.Itoa(os.Getpid()), dir: dir}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	group, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	internalUser, internalGroup, loginUser := me.Username, group.Name, me.Username
	mailUID, mailGID := me.Uid, me.Gid
	if me.Uid == "0" {
		internalUser, internalGroup, loginUser = "dovecot", "dovecot", "dovenull"
		mailUID, mailGID = "65534", "65534"
		if err := os.Chown(filepath.Join(dir, "home"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), fmt.Appendf(nil, "%s:{PLAIN}%s::::::\n", d.User, d.Password), 0o644); err != nil {
		t.Fatal(err)
	}
	sslConf := "ssl = no\n"
	if withTLS {
		certFile, keyFile, pool := testCert(t, dir)
		sslConf = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n", certFile, keyFile)
		d.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		d.Port, d.TLSPort = freePort(t), 0
		tlsListener := "  inet_listener imaps {\n    port = 0\n  }\n"
		if withTLS {
			d.TLSPort = freePort(t)
			tlsListener = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", d.TLSPort)
		}
		conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
%[2]sdisable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
default_internal_user = %[3]s
default_internal_group = %[4]s
default_login_user = %[5]s
mail_location = maildir:%[1]s/home/%%u/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[6]s gid=%[7]s home=%[1]s/home/%%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[8]d
  }
%[9]s}
service anvil {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = /
}
`, dir, sslConf, internalUser, internalGroup, loginUser, mailUID, mailGID, d.Port, tlsListener)
		confFile := filepath.Join(dir, "dovecot.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-F", "-c", confFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start dovecot: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = d.waitReady(exited); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
					t.Logf("dovecot log:\n%s", log)
				}
			})
			return d
		}
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		lastErr = fmt.Errorf("%w\noutput: %s\nlog: %s", lastErr, out.String(), log)
	}
	t.Fatalf("dovecot did not start: %v", lastErr)
	return nil
}

func (d *dovecot) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("dovecot exited")
		default:
		}
		c, err := imapclient.DialInsecure(d.Addr(), nil)
		if err == nil {
			err = c.Login(d.User, d.Password).Wait()
			c.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("dovecot did not answer within 20s")
}

// Addr is the plain-text (and STARTTLS) address.
func (d *dovecot) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// client returns a logged-in client for the test's own use.
func (d *dovecot) client(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendMail stores messages in folder (created if missing).
func (d *dovecot) appendMail(t testing.TB, folder string, raws ...[]byte) {
	t.Helper()
	c := d.client(t)
	if folder != "INBOX" {
		_ = c.Create(folder, nil).Wait()
	}
	for _, raw := range raws {
		cmd := c.Append(folder, int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append to %s: %v", folder, err)
		}
	}
	_ = c.Logout().Wait()
}

// bodies returns every message in folder as the server hands it out
// (Dovecot turns bare LF line ends into CRLF, and more), named by UID.
func (d *dovecot) bodies(t testing.TB, folder string) []corpusMessage {
	t.Helper()
	c := d.client(t)
	defer func() { _ = c.Logout().Wait() }()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusMessage
	for _, m := range msgs {
		out = append(out, corpusMessage{fmt.Sprint(m.UID), m.FindBodySection(section)})
	}
	return out
}

// count returns the number of messages in folder; -1 when it does not exist.
func (d *dovecot) count(t testing.TB, folder string) int {
	t.Helper()
	c := d.client(t)
	defer func() { _ = c.Logout().Wait() }()
	st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		var imapErr *imap.Error
		// Dovecot answers STATUS on a missing folder without the code.
		if errors.As(err, &imapErr) && (imapErr.Code == imap.ResponseCodeNonExistent || strings.Contains(imapErr.Text, "doesn't exist")) {
			return -1
		}
		t.Fatalf("status %s: %v", folder, err)
	}
	return int(*st.NumMessages)
}

// flags returns the flags of every message in folder, by UID order.
func (d *dovecot) flags(t testing.TB, folder string) [][]imap.Flag {
	t.Helper()
	c := d.client(t)
	defer func() { _ = c.Logout().Wait() }()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]imap.Flag
	for _, m := range msgs {
		out = append(out, m.Flags)
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testCert writes a CA-signed certificate for 127.0.0.1 and localhost
// and returns its files and a pool trusting the CA.
func testCert(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bounced test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool
}

// proxy forwards TCP connections to target until cut, so tests can
// break a connection in the middle of a batch.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// cut closes every connection through the proxy; new ones still work.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// corpusMessage is one shared-corpus file.
type corpusMessage struct {
	name string
	raw  []byte
}

// corpus returns the shared corpus (internal/parse/testdata/sisimai),
// every step-th file, in name order.
func corpus(t testing.TB, step int) []corpusMessage {
	t.Helper()
	files, err := filepath.Glob("../parse/testdata/sisimai/eml/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var out []corpusMessage
	for i := 0; i < len(files); i += step {
		raw, err := os.ReadFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusMessage{filepath.Base(files[i]), raw})
	}
	return out
}

func raws(msgs []corpusMessage) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.raw
	}
	return out
}

// expectEvents returns, per sha256 of the distinct messages, how many
// events recording them must write: one per recipient of a report that
// parsed (what ingest.Mail records).
func expectEvents(msgs []corpusMessage) map[[32]byte]int {
	want := map[[32]byte]int{}
	for _, m := range msgs {
		rep, err := parse.Parse(m.raw)
		n := 0
		if err == nil {
			n = len(parse.Events(rep, time.Now()))
		}
		want[sha256.Sum256(m.raw)] = n
	}
	return want
}

// assertExactlyOnce checks the database holds each distinct message once
// with exactly its events.
func assertExactlyOnce(t testing.TB, conn *pgx.Conn, want map[[32]byte]int) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT m.sha256, count(e.id) FROM raw_messages m LEFT JOIN events e ON e.raw_id = m.id GROUP BY m.id, m.sha256`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[[32]byte]int{}
	for rows.Next() {
		var sum []byte
		var n int
		if err := rows.Scan(&sum, &n); err != nil {
			t.Fatal(err)
		}
		var k [32]byte
		copy(k[:], sum)
		if _, dup := got[k]; dup {
			t.Errorf("message %x stored twice", sum)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("raw_messages holds %d messages, want %d", len(got), len(want))
	}
	for k, n := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("message %x missing", k[:6])
		} else if g != n {
			t.Errorf("message %x has %d events, want %d", k[:6], g, n)
		}
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events WHERE raw_id IS NULL`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d events without a raw message", orphans)
	}
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countRows(t testing.TB, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgConn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// metricValue returns the value of the sample of name whose labels
// include labels, 0 when there is none.
func metricValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// hasFlag reports whether flags holds f (case-insensitively, as IMAP does).
func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// Command mtacorpus builds a labelled corpus of bounces from real mail
// software. It runs an SMTP sink on the loopback interface that answers
// each recipient with a reply a mailbox provider documents (cases.go),
// submits one message per reply through the MTA under test (its
// sendmail command; the MTA relays everything to the sink), runs the
// MTA's queue until every message has bounced, and writes the bounces
// the MTA delivered to the local sender's Maildir as .eml files with a
// labels file. It talks to no host but 127.0.0.1.
//
// It does not install or configure MTAs: generate.sh in the corpus
// directory (internal/parse/testdata/mta) does, one MTA at a time, and
// runs this command for each. See the README there.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	mta := flag.String("mta", "", "name of the MTA under test (postfix, exim, opensmtpd): names the output files")
	out := flag.String("out", "internal/parse/testdata/mta", "corpus directory")
	listen := flag.String("listen", "127.0.0.1:2525", "sink address (loopback only)")
	sendmail := flag.String("sendmail", "/usr/sbin/sendmail", "the MTA's sendmail command")
	sender := flag.String("sender", "bsender@mta.test", "envelope sender; its bounces land in -maildir")
	maildir := flag.String("maildir", "/home/bsender/Maildir", "the sender's Maildir")
	flush := flag.String("flush", "", "command that runs the MTA's queue at once (postqueue -f, exim -qff, smtpctl schedule all)")
	wait := flag.Duration("wait", 15*time.Minute, "how long to wait for every bounce")
	only := flag.String("only", "", "comma-separated vendors to send (default all)")
	lf := flag.Bool("lf", false, "submit with LF line ends, as the Unix sendmail interface takes them (dma and nullmailer pass a CR they are given on, so a CRLF line goes out as CR CR LF)")
	deliver := flag.Bool("deliver", false, "the sink is also the sender's mail server: a message it is given for -sender is put in -maildir (for an MTA without local delivery, nullmailer, whose bounces go to the relay like any other mail)")
	flag.Parse()
	if *mta == "" {
		log.Fatal("mtacorpus: -mta is required")
	}
	if !strings.HasPrefix(*listen, "127.") {
		log.Fatal("mtacorpus: the sink listens on the loopback interface only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()
	if err := run(ctx, config{mta: *mta, out: *out, listen: *listen, sendmail: *sendmail, sender: *sender,
		maildir: *maildir, flush: *flush, only: *only, deliver: *deliver, lf: *lf}); err != nil {
		log.Fatal(err)
	}
}

type config struct {
	mta, out, listen, sendmail, sender, maildir, flush, only string
	vendors                                                  map[string]bool // of only; empty: all
	deliver, lf                                              bool
}

// rcptDomain is the domain of every test recipient; the MTA routes it
// to the sink.
const rcptDomain = "sink.test"

func rcptOf(c Case) string { return c.Vendor + "-" + c.ID + "@" + rcptDomain }

func run(ctx context.Context, cfg config) error {
	byRcpt := map[string]Case{}
	var todo []Case
	cfg.vendors = map[string]bool{}
	for _, v := range strings.Split(cfg.only, ",") {
		if v != "" {
			cfg.vendors[v] = true
		}
	}
	for _, c := range cases {
		if len(cfg.vendors) > 0 && !cfg.vendors[c.Vendor] {
			continue
		}
		byRcpt[strings.ToLower(rcptOf(c))] = c
		todo = append(todo, c)
	}
	snk := &sink{cases: byRcpt}
	if cfg.deliver {
		snk.sender, snk.maildir = strings.ToLower(cfg.sender), cfg.maildir
	}
	srv := smtp.NewServer(snk)
	srv.Addr = cfg.listen
	srv.Domain = "mx.sink.test"
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			log.Printf("sink: %v", err)
		}
	}()
	defer srv.Close()
	time.Sleep(200 * time.Millisecond)

	seen := existing(cfg.maildir)
	for _, c := range todo {
		if err := submit(cfg, c); err != nil {
			return fmt.Errorf("submit %s: %w", rcptOf(c), err)
		}
	}
	log.Printf("submitted %d messages through %s; waiting for the bounces", len(todo), cfg.mta)
	got := map[string][]byte{}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for len(got) < len(todo) {
		if cfg.flush != "" {
			f := strings.Fields(cfg.flush)
			_ = exec.CommandContext(ctx, f[0], f[1:]...).Run()
		}
		collect(cfg.maildir, seen, byRcpt, got)
		if len(got) == len(todo) {
			break
		}
		select {
		case <-ctx.Done():
			log.Printf("gave up waiting: %d of %d bounces", len(got), len(todo))
			return write(cfg, todo, got)
		case <-tick.C:
		}
		log.Printf("%d of %d bounces", len(got), len(todo))
	}
	return write(cfg, todo, got)
}

// submit sends one message for a case through the MTA's sendmail.
func submit(cfg config, c Case) error {
	rcpt := rcptOf(c)
	msg := fmt.Sprintf("From: Newsletter <%s>\r\nTo: <%s>\r\nSubject: Monthly news (case %s/%s)\r\nMessage-ID: <%s.%s@mta.test>\r\nX-Corpus-Case: %s/%s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello,\r\n\r\nthis is the monthly newsletter.\r\n",
		cfg.sender, rcpt, c.Vendor, c.ID, c.Vendor, c.ID, c.Vendor, c.ID)
	if cfg.lf {
		msg = strings.ReplaceAll(msg, "\r\n", "\n")
	}
	cmd := exec.Command(cfg.sendmail, "-f", cfg.sender, "-i", "--", rcpt)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// existing lists the messages already in the Maildir, to skip them.
func existing(dir string) map[string]bool {
	seen := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			seen[filepath.Join(sub, e.Name())] = true
		}
	}
	return seen
}

var caseHeader = regexp.MustCompile(`(?m)^X-Corpus-Case: ([a-z0-9-]+)/([a-z0-9-]+)`)

// collect reads new bounces from the Maildir and files them by case.
func collect(dir string, seen map[string]bool, byRcpt map[string]Case, got map[string][]byte) {
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			name := filepath.Join(sub, e.Name())
			if seen[name] {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			seen[name] = true
			m := caseHeader.FindSubmatch(raw)
			if m == nil {
				log.Printf("skipping %s: no case header (a delay warning or unrelated mail)", name)
				continue
			}
			key := strings.ToLower(string(m[1]) + "-" + string(m[2]) + "@" + rcptDomain)
			c, ok := byRcpt[key]
			if !ok {
				continue
			}
			if isWarning(raw) {
				continue // a delay warning; the final bounce comes later
			}
			got[c.Vendor+"/"+c.ID] = raw
		}
	}
}

// isWarning reports a delay notification rather than a final bounce.
func isWarning(raw []byte) bool {
	head := string(raw[:min(len(raw), 4096)])
	if strings.Contains(head, "Envelope expired") {
		// OpenSMTPD reports an envelope it gave up on with its delay
		// template: it is the final bounce.
		return false
	}
	return strings.Contains(head, "Subject: Delayed Mail") || strings.Contains(head, "Subject: Warning: message") ||
		strings.Contains(head, "Subject: Delivery status notification: delayed")
}

// write stores the bounces and rewrites this MTA's rows of labels.tsv.
func write(cfg config, todo []Case, got map[string][]byte) error {
	dir := filepath.Join(cfg.out, "eml", cfg.mta)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	labelsPath := filepath.Join(cfg.out, "labels.tsv")
	rows := map[string]string{}
	if f, err := os.Open(labelsPath); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "file\t") || line == "" {
				continue
			}
			c := strings.Split(line, "\t")
			// This run rewrites this MTA's rows of the vendors it sent
			// (all without -only) and keeps every other row.
			if !strings.HasPrefix(c[0], "eml/"+cfg.mta+"/") || len(c) > 2 && len(cfg.vendors) > 0 && !cfg.vendors[c[2]] {
				rows[c[0]] = line
			}
		}
		f.Close()
	}
	missing := 0
	for _, c := range todo {
		raw, ok := got[c.Vendor+"/"+c.ID]
		if !ok {
			missing++
			log.Printf("no bounce for %s/%s", c.Vendor, c.ID)
			continue
		}
		file := "eml/" + cfg.mta + "/" + c.Vendor + "-" + c.ID + ".eml"
		if err := os.WriteFile(filepath.Join(cfg.out, file), raw, 0o644); err != nil {
			return err
		}
		rows[file] = strings.Join([]string{file, cfg.mta, c.Vendor, c.ID, rcptOf(c), c.Reason,
			fmt.Sprint(c.Suppress), fmt.Sprint(c.Transient()), part(c, file), fmt.Sprintf("%d %s", c.Code, c.Enhanced)}, "\t")
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f, err := os.Create(labelsPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# Generated by internal/mtacorpus; see README.md. Labels are the documented meaning of each reply.")
	fmt.Fprintln(w, "file\tmta\tvendor\tcase\trecipient\treason\tsuppress\ttransient\tpart\treply")
	for _, k := range keys {
		fmt.Fprintln(w, rows[k])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("%d cases got no bounce", missing)
	}
	return nil
}

// part puts a case in the tuning part or the held-out part: whole MTAs
// (heldOutMTAs) and whole vendors are held out, and of the others one
// file in four, chosen by a hash of its name so the choice is stable.
func part(c Case, file string) string {
	if mta := strings.Split(file, "/"); len(mta) > 1 && heldOutMTAs[mta[1]] {
		return "holdout-mta"
	}
	if heldOutVendors[c.Vendor] {
		return "holdout-vendor"
	}
	if sum := sha256.Sum256([]byte(file)); sum[0]%4 == 0 {
		return "holdout-random"
	}
	return "tune"
}

// sink answers every recipient with its case's reply.
type sink struct {
	cases map[string]Case
	// sender and maildir are set with -deliver: mail for sender is
	// delivered to maildir, stored counting the messages put there.
	sender, maildir string
	mu              sync.Mutex
	stored          int
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{sink: s}, nil }

type session struct {
	sink *sink
	mu   sync.Mutex
	data []Case // refused at DATA
	// from is the envelope sender; deliver is set when the sender of the
	// test messages is a recipient (a bounce relayed to the sink).
	from    string
	deliver bool
}

func (s *session) Reset() {
	s.mu.Lock()
	s.data, s.from, s.deliver = nil, "", false
	s.mu.Unlock()
}
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.mu.Lock()
	s.from = from
	s.mu.Unlock()
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.sink.sender != "" && strings.ToLower(to) == s.sink.sender {
		s.mu.Lock()
		s.deliver = true
		s.mu.Unlock()
		return nil
	}
	c, ok := s.sink.cases[strings.ToLower(to)]
	if !ok {
		return nil
	}
	if c.Stage == "data" {
		s.mu.Lock()
		s.data = append(s.data, c)
		s.mu.Unlock()
		return nil
	}
	return reply(c, to)
}

func (s *session) Data(r io.Reader) error {
	s.mu.Lock()
	deliver, from := s.deliver, s.from
	s.mu.Unlock()
	if deliver {
		raw, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return s.sink.store(from, raw)
	}
	_, _ = io.Copy(io.Discard, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.data) > 0 {
		return reply(s.data[0], rcptOf(s.data[0]))
	}
	return nil
}

// reply builds the case's SMTP error, with the recipient filled in where
// the provider's text names it.
func reply(c Case, to string) error {
	text := c.Text
	if strings.Contains(text, "%s") {
		text = strings.ReplaceAll(text, "%s", to)
	}
	code := smtp.NoEnhancedCode
	if c.Enhanced != "" {
		var a, b, d int
		if _, err := fmt.Sscanf(c.Enhanced, "%d.%d.%d", &a, &b, &d); err == nil {
			code = smtp.EnhancedCode{a, b, d}
		}
	}
	return &smtp.SMTPError{Code: c.Code, EnhancedCode: code, Message: text}
}

// store delivers a message for the sender into the Maildir as a final
// delivery does, with a Return-Path of the envelope sender in front and
// nothing else changed.
func (s *sink) store(from string, raw []byte) error {
	s.mu.Lock()
	s.stored++
	name := fmt.Sprintf("%d.sink%d_%d.mta.test", time.Now().Unix(), os.Getpid(), s.stored)
	s.mu.Unlock()
	msg := append([]byte("Return-Path: <"+from+">\r\n"), raw...)
	tmp := filepath.Join(s.maildir, "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store: " + err.Error()}
	}
	if err := os.Rename(tmp, filepath.Join(s.maildir, "new", name)); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store: " + err.Error()}
	}
	return nil
}

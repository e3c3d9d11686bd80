package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/loadgen"
	"github.com/bounced/bounced/internal/pgserver"
	"github.com/bounced/bounced/internal/store"
)

// These tests break things under load and then count rows: every event
// the load generator saw acknowledged must be in the database exactly
// once. `make test` runs them; `make test-faults` runs only them.

// childEnv marks a run of this test binary as bounced itself, so a test
// can start bounced as a separate process and kill -9 it.
const childEnv = "BOUNCED_TEST_BE_BOUNCED"

func kitFor(t *testing.T) *webhooktest.Kit {
	t.Helper()
	kit, err := webhooktest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kit.Close)
	return kit
}

func signer(kit *webhooktest.Kit) loadgen.SignFunc {
	return func(provider string, body []byte) http.Header {
		_, h := kit.Request(provider, body)
		return h
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startChild runs bounced in a child process listening on addr and waits
// until it is ready.
func startChild(t *testing.T, addr string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--listen", addr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), append(env, childEnv+"=1")...)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for range 200 {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("bounced did not become ready")
	return nil
}

func checkRun(t *testing.T, dbURL string, res loadgen.Result) {
	t.Helper()
	t.Log(res.String())
	if res.GaveUp > 0 {
		t.Errorf("%d requests were never acknowledged", res.GaveUp)
	}
	c, err := loadgen.Check(context.Background(), dbURL, res.Provider, res.RunID, res.EventsPerRequest, res.AckedRequests)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(c.String())
	if !c.OK() || c.Acked != res.EventsAcked || c.Acked == 0 {
		t.Errorf("check = %+v, want every acknowledged event stored exactly once", c)
	}
}

// TestFaultKillBouncedMidLoad kills bounced with SIGKILL while requests
// are in flight, starts it again on the same address, and lets the load
// generator retry whatever was not acknowledged.
func TestFaultKillBouncedMidLoad(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	kit := kitFor(t)
	env := []string{"DATABASE_URL=" + dbURL}
	for k, v := range kit.Env() {
		env = append(env, k+"="+v)
	}
	addr := freePort(t)
	child := startChild(t, addr, env)

	var acked atomic.Int64
	type outcome struct {
		res loadgen.Result
		err error
	}
	runs := make(chan outcome, 2)
	for _, shape := range []struct {
		provider     string
		events, reqs int
		concurrency  int
	}{{loadgen.Generic, 1, 3000, 32}, {loadgen.SendGrid, 50, 120, 4}} {
		go func() {
			res, err := loadgen.Run(context.Background(), loadgen.Options{
				URL: "http://" + addr, Provider: shape.provider, EventsPerRequest: shape.events,
				Requests: shape.reqs, Duration: time.Minute, Drain: time.Minute, Concurrency: shape.concurrency,
				MaxBackoff: 200 * time.Millisecond, Sign: signer(kit),
				OnAck: func(int) { acked.Add(1) },
			})
			runs <- outcome{res, err}
		}()
	}
	// Kill it once a good part of the load is through, not all of it.
	for acked.Load() < 400 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killedAt := acked.Load()
	t.Logf("killed bounced with SIGKILL after %d acknowledged requests", killedAt)
	time.Sleep(300 * time.Millisecond) // the clients see refused connections meanwhile
	startChild(t, addr, env)
	for range 2 {
		o := <-runs
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Unanswered == 0 {
			t.Errorf("%s: no request went unanswered; the kill did not happen mid-load", o.res.Provider)
		}
		checkRun(t, dbURL, o.res)
	}
	if killedAt >= 3000+120 {
		t.Errorf("the load was over before the kill")
	}
}

// TestFaultRestartPostgres stops PostgreSQL under load: requests get 503
// with Retry-After during the outage, bounced reconnects by itself once
// the server is back, and nothing acknowledged is lost.
func TestFaultRestartPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bounced-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := pgserver.Options{DataDir: filepath.Join(dir, "pg"), SocketDir: filepath.Join(dir, "sock"), Ephemeral: true}
	pg, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = pg.Stop(context.Background())
		}
	})
	dbURL := pg.URL("")
	db, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	kit := kitFor(t)
	vars := map[string]string{"BOUNCED_DATABASE_URL": dbURL}
	for k, v := range kit.Env() {
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	base, _ := startServe(t, getenv, "--log-level", "warn")

	var acked atomic.Int64
	done := make(chan struct{})
	var res loadgen.Result
	var runErr error
	go func() {
		defer close(done)
		res, runErr = loadgen.Run(ctx, loadgen.Options{
			URL: base, Provider: loadgen.Generic, EventsPerRequest: 1, Requests: 3000, Duration: time.Minute,
			Drain: time.Minute, Concurrency: 16, MaxBackoff: 200 * time.Millisecond, Sign: signer(kit),
			OnAck: func(int) { acked.Add(1) },
		})
	}()
	for acked.Load() < 400 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("stopped PostgreSQL after %d acknowledged requests", acked.Load())
	// While it is down, a webhook is refused quickly, and not acknowledged.
	body, h := kit.Request("generic", []byte(`{"recipient":"outage@example.com","status":"5.1.1","id":"outage-1"}`))
	outage := time.Now()
	code, retryAfter := postWebhook(t, base+"/v1/webhooks/generic", body, h)
	t.Logf("during the outage a webhook was answered %d in %v", code, time.Since(outage))
	if code != 503 || retryAfter == "" {
		t.Errorf("during the outage = %d (Retry-After %q), want 503 with Retry-After", code, retryAfter)
	}
	time.Sleep(time.Second)
	if pg, err = pgserver.Start(ctx, opts); err != nil {
		t.Fatal(err)
	}
	stopped = false
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	if res.Statuses["503"] == 0 {
		t.Errorf("statuses %v: no 503 while PostgreSQL was down", res.Statuses)
	}
	checkRun(t, dbURL, res)
	// The request refused during the outage was not stored; sent again, it is.
	if code, _ := postWebhook(t, base+"/v1/webhooks/generic", body, h); code != 200 {
		t.Errorf("after the outage the refused request = %d, want 200", code)
	}
}

func postWebhook(t *testing.T, url string, body []byte, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestFaultBadInputNeverCrashes throws every kind of bad request at every
// provider of a running bounced and checks each is answered with a
// problem, and that bounced is still serving afterwards.
func TestFaultBadInputNeverCrashes(t *testing.T) {
	t.Parallel()
	kit := kitFor(t)
	// bounced runs as a process of its own that trusts the kit's SNS
	// certificate server, as it would trust Amazon's.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, kit.TLSCertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + dbtest.URL(t), "BOUNCED_WEBHOOK_MAX_BODY_BYTES=65536", "SSL_CERT_FILE=" + ca}
	for k, v := range kit.Env() {
		env = append(env, k+"="+v)
	}
	addr := freePort(t)
	startChild(t, addr, env)
	base := "http://" + addr
	bodies := map[string][]byte{
		"truncated":   []byte(`[{"email":"a@example.com","event":"bou`),
		"wrong types": []byte(`[{"email":{"x":1},"event":[1,2],"timestamp":"soon"}]`),
		"not json":    []byte("\x00\xff\xfe binary garbage"),
		"empty":       {},
		"too large":   make([]byte, 100<<10),
	}
	for _, provider := range webhook.Providers() {
		for name, b := range bodies {
			for _, signed := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/signed=%v", provider, name, signed), func(t *testing.T) {
					h := http.Header{"Content-Type": {"application/json"}}
					body := b
					if signed {
						payload := b
						if provider == "mailgun" { // event-data must be JSON to be signed inside JSON
							payload, _ = json.Marshal(string(b))
						}
						body, h = kit.Request(provider, payload)
					}
					code, _ := postWebhook(t, base+"/v1/webhooks/"+provider, body, h)
					switch {
					case name == "too large" && code != 413:
						t.Errorf("answer %d, want 413", code)
					case !signed && code != 400 && code != 401 && code != 413:
						t.Errorf("unsigned: answer %d, want 400 or 401", code)
					case signed && code != 200 && code != 422 && code != 413:
						// Signed garbage is stored and reported (422), or
						// for SES a non-JSON notification is a notice (200).
						t.Errorf("signed: answer %d, want 422 (or 200 for an SNS text notice)", code)
					}
				})
			}
		}
	}
	if code := getStatus(t, base+"/healthz"); code != 200 {
		t.Errorf("after the bad input /healthz = %d", code)
	}
}

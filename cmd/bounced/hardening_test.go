package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
)

// TestServeCapsConnections: past BOUNCED_MAX_CONNECTIONS open connections
// a new one waits, unserved, until one closes.
func TestServeCapsConnections(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t), "BOUNCED_MAX_CONNECTIONS", "2"))
	defer stop()
	// Two clients each keep a connection open (idle, kept alive).
	holders := []*http.Client{{Transport: &http.Transport{}}, {Transport: &http.Transport{}}}
	for i, c := range holders {
		resp, err := c.Get(base + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("holder %d: %v %v", i, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // read to the end: the connection stays open
		resp.Body.Close()
	}
	third := &http.Client{Transport: &http.Transport{}, Timeout: time.Second}
	if resp, err := third.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served (%d) while two were open, with a cap of 2", resp.StatusCode)
	}
	holders[0].CloseIdleConnections()
	third.Timeout = 30 * time.Second
	resp, err := third.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after one connection closed: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
}

// TestRevokingLastKeyKeepsExposedAPIClosed is the attack of issue 14: a
// key exists, so serve listens on 0.0.0.0; its revocation must not open
// the API again.
func TestRevokingLastKeyKeepsExposedAPIClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	getenv := env("BOUNCED_DATABASE_URL", dbtest.URL(t))
	var out bytes.Buffer
	if err := run(ctx, []string{"apikey", "create", "--name", "ops", "--scope", "admin", "--json"}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var key struct{ Token string }
	if err := json.Unmarshal(out.Bytes(), &key); err != nil || key.Token == "" {
		t.Fatalf("apikey create = %q, %v", out.String(), err)
	}
	base, stop := startServeAs(t, getenv, io.Discard, "--listen", "0.0.0.0:0")
	defer stop()
	base = "http://127.0.0.1:" + base[strings.LastIndex(base, ":")+1:]
	waitStatus(t, base+"/v1/suppressions", key.Token, 200)
	if err := run(ctx, []string{"apikey", "revoke", "ops"}, getenv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/v1/suppressions", key.Token, 401)
	if code := getStatus(t, base+"/v1/suppressions"); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/suppressions without a key after the last was revoked = %d, want 401", code)
	}
	req, _ := http.NewRequest("PUT", base+"/v1/policy", strings.NewReader(`{"soft_threshold":1}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("PUT /v1/policy without a key after the last was revoked = %d, want 401", resp.StatusCode)
	}
}

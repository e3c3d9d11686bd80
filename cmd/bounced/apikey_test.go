package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
)

func TestAPIKeyCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	getenv := env("BOUNCED_DATABASE_URL", dbtest.URL(t))
	base, _ := startServe(t, getenv)
	// No key yet: the API is open, as the README shows.
	if code := getStatus(t, base+"/v1/suppressions"); code != 200 {
		t.Fatalf("GET /v1/suppressions before any key = %d, want 200", code)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"apikey", "create", "--name", "mautic", "--scope", "suppressions:read,events:read", "--tenant", "acme", "--json"}, getenv, nil, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID     int64
		Name   string
		Tenant string
		Token  string
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil || created.Name != "mautic" || created.Tenant != "acme" || !strings.HasPrefix(created.Token, "bnc_") {
		t.Fatalf("apikey create --json = %q, %v", out.String(), err)
	}
	// The running server requires keys now and accepts this one.
	waitStatus(t, base+"/v1/suppressions", "", 401)
	waitStatus(t, base+"/v1/suppressions", created.Token, 200)
	out.Reset()
	if err := run(ctx, []string{"apikey", "list"}, getenv, nil, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mautic") || !strings.Contains(out.String(), "suppressions:read,events:read") || strings.Contains(out.String(), created.Token) {
		t.Errorf("apikey list = %q", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"apikey", "revoke", "mautic"}, getenv, nil, &out, testWriter{t}); err != nil || !strings.Contains(out.String(), "revoked key") {
		t.Fatalf("apikey revoke = %q, %v", out.String(), err)
	}
	// Revoked: the server refuses it. No active key is left, but keys stay
	// required until bounced restarts: the API never opens at run time.
	waitStatus(t, base+"/v1/suppressions", created.Token, 401)
	if code := getStatus(t, base+"/v1/suppressions"); code != 401 {
		t.Errorf("GET /v1/suppressions after the last key was revoked = %d, want 401", code)
	}
	var ue usageError
	for _, args := range [][]string{
		{"apikey"}, {"apikey", "frob"}, {"apikey", "create", "--name", "x"},
		{"apikey", "create", "--name", "x", "--scope", "root"}, {"apikey", "revoke"},
	} {
		if err := run(ctx, args, getenv, nil, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%v = %v, want a usage error", args, err)
		}
	}
	if err := run(ctx, []string{"apikey", "revoke", "nobody"}, getenv, nil, io.Discard, io.Discard); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
}

// waitStatus polls until GET url with token answers status: the server
// learns about key changes through a notification.
func waitStatus(t *testing.T, url, token string, status int) {
	t.Helper()
	var last int
	for range 200 {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if last = resp.StatusCode; last == status {
			return
		}
		sleep()
	}
	t.Fatalf("GET %s = %d, want %d", url, last, status)
}

func TestServeRefusesOpenNonLoopback(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	err := run(context.Background(), []string{"serve", "--listen", "0.0.0.0:0"}, env("BOUNCED_DATABASE_URL", url), nil, io.Discard, testWriter{t})
	if !errors.Is(err, ErrOpenExposed) {
		t.Errorf("serve on 0.0.0.0 with no keys = %v, want ErrOpenExposed", err)
	}
	// With an admin key configured it serves, and requires keys.
	keyFile := filepath.Join(t.TempDir(), "admin")
	os.WriteFile(keyFile, []byte("admin-token-0123456789abcdef\n"), 0o600)
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", url, "BOUNCED_ADMIN_KEY_FILE", keyFile))
	waitStatus(t, base+"/v1/suppressions", "", 401)
	waitStatus(t, base+"/v1/suppressions", "admin-token-0123456789abcdef", 200)
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func sleep() { <-time.After(25 * time.Millisecond) }

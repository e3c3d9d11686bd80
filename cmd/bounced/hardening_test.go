package main

import (
	"io"
	"net/http"
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

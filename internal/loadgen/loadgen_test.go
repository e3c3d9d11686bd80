package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8025", true},
		{"http://localhost:8025", true},
		{"http://[::1]:8025", true},
		{"http://192.0.2.1:8025", false},
		{"http://8.8.8.8", false},
		{"not a url", false},
	} {
		err := CheckLoopback(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
	if _, err := Run(context.Background(), Options{URL: "http://192.0.2.1", Provider: Generic, Requests: 1, Sign: noSign}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("Run against a remote host = %v, want ErrNotLoopback", err)
	}
}

func noSign(string, []byte) http.Header { return http.Header{} }

// TestRunRetriesUntilAcknowledged: a server that refuses, then drops
// connections, then accepts; every request ends acknowledged, once.
func TestRunRetriesUntilAcknowledged(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		seen[ev.ID]++
		n := seen[ev.ID]
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			panic(http.ErrAbortHandler) // no answer at all
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Provider: Generic, Requests: 20, Duration: time.Minute, Concurrency: 4,
		MaxBackoff: 20 * time.Millisecond, Sign: noSign, RunID: "rtest",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked != 20 || res.GaveUp != 0 || len(res.AckedRequests) != 20 || res.Statuses["503"] != 20 || res.Unanswered != 20 || res.Attempts != 60 {
		t.Errorf("result %+v, want 20 acknowledged after one 503 and one dropped answer each", res)
	}
	if res.FailLatencyMax <= 0 || res.LatencyP99 <= 0 {
		t.Errorf("latencies not measured: %+v", res)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestDBWorkConcurrencyBounded: -concurrency with -dbwork replaces each
// path's requests in flight, within what PostgreSQL alone can be given
// connections for; outside that the tool says so and measures nothing.
func TestDBWorkConcurrencyBounded(t *testing.T) {
	for _, n := range []string{"0", "-3", "257", "100000"} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"-dbwork", "-concurrency", n, "-bounced", os.DevNull}, func(string) string { return "" }, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "between 1 and 256") {
			t.Errorf("-dbwork -concurrency %s: %v, want a refusal naming the bounds", n, err)
		}
		if out.Len() != 0 {
			t.Errorf("-dbwork -concurrency %s printed %q", n, out.String())
		}
	}
}

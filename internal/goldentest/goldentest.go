// Package goldentest compares test output with golden files, for the parser's
// and the webhook decoders' tests.
package goldentest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Check fails t when got differs from the file at path. With update set it
// writes got to path instead (the tests' -update flag).
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n%s", path, Diff(string(want), string(got)))
	}
}

// Diff lists the lines that differ between want and got, with their line
// numbers: enough to read a golden mismatch.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "%4d - %s\n%4d + %s\n", i+1, wl, i+1, gl)
		}
	}
	return b.String()
}

package parse

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/quirks")

// TestQuirkGoldens parses every vendor quirk's fixture (a QUIRK comment
// in the code names each) and compares the report with its golden JSON.
// go test ./internal/parse -update rewrites the goldens.
func TestQuirkGoldens(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/quirks/*.eml")
	if err != nil || len(files) < 30 {
		t.Fatalf("found %d quirk fixtures (%v), want the whole set", len(files), err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			rep, perr := Parse(raw)
			out := struct {
				*Report
				Error string `json:"error"`
			}{Report: rep}
			if perr != nil {
				out.Error = perr.Error()
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".eml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/parse -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Parse(%s) differs from %s:\n%s", file, golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff lists the lines that differ between want and got, with their
// line numbers: enough to read a golden mismatch.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
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

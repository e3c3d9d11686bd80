package parse

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/goldentest"
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
			goldenPath := strings.TrimSuffix(file, ".eml") + ".golden.json"
			goldentest.Check(t, goldenPath, got, *update)
		})
	}
}

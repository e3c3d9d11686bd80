package parse

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/bounced/bounced/internal/goldentest"
)

// TestCorpusLineEndings reads the whole corpus with LF, CRLF and bare CR
// line endings: the reports must be the same.
func TestCorpusLineEndings(t *testing.T) {
	t.Parallel()
	for i, lf := range corpus(t) {
		lf = normalizeLineEndings(lf)
		want := reportJSON(t, lf)
		for name, raw := range map[string][]byte{
			"crlf": bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")),
			"cr":   bytes.ReplaceAll(lf, []byte("\n"), []byte("\r")),
		} {
			if got := reportJSON(t, raw); got != want {
				t.Errorf("corpus message %d read with %s line endings differs:\n%s", i, name, goldentest.Diff(want, got))
			}
		}
	}
}

func reportJSON(t *testing.T, raw []byte) string {
	t.Helper()
	rep, _ := Parse(raw)
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

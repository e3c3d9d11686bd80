package parse

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// corpus returns the labelled corpus messages, for benchmarks.
func corpus(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob("testdata/sisimai/eml/*.eml")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no corpus: %v", err)
	}
	msgs := make([][]byte, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	return msgs
}

// BenchmarkParseCorpus parses the whole labelled corpus on one goroutine,
// one message per iteration, and reports messages per second.
func BenchmarkParseCorpus(b *testing.B) {
	msgs := corpus(b)
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	b.SetBytes(int64(size / len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rep, _ := Parse(msgs[i%len(msgs)]); rep == nil {
			b.Fatal("nil report")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// corpusFieldValues returns the values of the named header or
// delivery-status fields found in the corpus, to seed fuzz tests.
func corpusFieldValues(tb testing.TB, names ...string) []string {
	tb.Helper()
	seen := map[string]bool{}
	var out []string
	for _, raw := range corpus(tb) {
		for _, line := range bytes.Split(raw, []byte("\n")) {
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				continue
			}
			for _, n := range names {
				if v := string(bytes.TrimSpace(value)); bytes.EqualFold(name, []byte(n)) && !seen[v] && len(out) < 400 {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out
}

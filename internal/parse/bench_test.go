package parse

import (
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

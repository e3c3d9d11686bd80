//go:build !unix

package main

import (
	"io"
	"os"

	"github.com/bounced/bounced/internal/parse"
)

// readCapped reads at most parse.MaxInputSize+1 bytes of a file, one
// more than Parse takes, so it can say the input is too large.
func readCappedInto(path string, _ []byte) ([]byte, error) { return readCapped(path) }

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, parse.MaxInputSize+1))
}

//go:build unix

package main

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/bounced/bounced/internal/parse"
)

// readCapped reads at most parse.MaxInputSize+1 bytes of a file (one
// more than Parse takes, so it can say the input is too large) with the
// fewest system calls: open, fstat, a read of the whole size, close.
// os.ReadFile would also hand the descriptor to the runtime's poller
// (fcntl, epoll_ctl) and io.ReadAll would read in growing chunks: over
// thousands of small files that was the larger part of what `bounced
// parse` spent.
func readCapped(path string) ([]byte, error) { return readCappedInto(path, nil) }

// readCappedInto is readCapped reading into buf's storage when it is
// large enough (buf's length is ignored).
func readCappedInto(path string, buf []byte) ([]byte, error) {
	fd, err := retryEINTR(func() (int, error) { return syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	const limit = parse.MaxInputSize + 1
	size := 512
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Size > 0 {
		size = int(min(st.Size, limit)) + 1 // +1 sees the end of file in the same read
	}
	if cap(buf) < min(size, limit) {
		buf = make([]byte, 0, min(size, limit))
	}
	buf = buf[:0]
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
			buf = buf[:len(buf):min(cap(buf), limit)]
		}
		n, err := retryEINTR(func() (int, error) { return syscall.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
		if size > 512 && len(buf) == size-1 {
			break // the whole regular file, as fstat gave its size
		}
	}
	return buf, nil
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

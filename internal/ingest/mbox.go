package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrNotMbox means a file does not start with an mbox "From " line.
var ErrNotMbox = errors.New("ingest: not an mbox file (no leading \"From \" line)")

// mboxReader splits an mbox file into messages. It reads mboxrd (and so
// the older mboxo): a message starts at a line beginning "From " that
// opens the file or follows an empty line; body lines quoted as ">From ",
// ">>From " lose one '>'. The empty line before each "From " belongs to
// the separator. Content-Length headers (mboxcl) are not trusted.
type mboxReader struct {
	r        *bufio.Reader
	max      int64
	started  bool
	pending  []byte // the next message's From_ line was read already
	consumed int64
}

func newMboxReader(r io.Reader, maxMessage int64) *mboxReader {
	return &mboxReader{r: bufio.NewReaderSize(r, 64<<10), max: maxMessage}
}

// Next returns the next message, io.EOF after the last, ErrNotMbox when
// the input does not start like an mbox, or errTooLarge for a message
// over the limit (skipped: the next call goes on after it).
func (m *mboxReader) Next() ([]byte, error) {
	if !m.started {
		m.started = true
		line, err := m.firstLine()
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(line, []byte("From ")) {
			return nil, ErrNotMbox
		}
		m.pending = line
	}
	if m.pending == nil {
		return nil, io.EOF
	}
	m.pending = nil
	var msg []byte
	tooLarge := false
	prevBlank := false
	for {
		line, err := m.readLine()
		if len(line) > 0 {
			if prevBlank && bytes.HasPrefix(line, []byte("From ")) {
				m.pending = line
				break
			}
			prevBlank = isBlankLine(line)
			if !tooLarge {
				msg = append(msg, unquoteFrom(line)...)
				if int64(len(msg)) > m.max+2 { // +2: the separator's line end is cut below
					tooLarge, msg = true, nil
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if tooLarge {
		return nil, errTooLarge
	}
	// The empty line before the next From_ line (or closing the file) is
	// the separator's: the message keeps the line end before it.
	if prevBlank {
		msg = trimOneLineEnd(msg)
	}
	if int64(len(msg)) > m.max {
		return nil, errTooLarge
	}
	return msg, nil
}

// Consumed returns how many bytes of input have been read.
func (m *mboxReader) Consumed() int64 { return m.consumed }

// firstLine skips blank lines at the start of the file.
func (m *mboxReader) firstLine() ([]byte, error) {
	for {
		line, err := m.readLine()
		if len(line) > 0 && !isBlankLine(line) {
			return line, nil
		}
		if err == io.EOF {
			return nil, ErrNotMbox
		}
		if err != nil {
			return nil, err
		}
	}
}

// readLine returns the next line with its line end; io.EOF comes with the
// last bytes, or alone.
func (m *mboxReader) readLine() ([]byte, error) {
	line, err := m.r.ReadBytes('\n')
	m.consumed += int64(len(line))
	return line, err
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

func trimOneLineEnd(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	if bytes.HasSuffix(b, []byte("\n")) {
		return b[:len(b)-1]
	}
	return b
}

// unquoteFrom turns ">From ", ">>From ", ... into one '>' fewer.
func unquoteFrom(line []byte) []byte {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if i > 0 && bytes.HasPrefix(line[i:], []byte("From ")) {
		return line[1:]
	}
	return line
}

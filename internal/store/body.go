package store

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Raw bodies of deflateMin bytes or more are kept compressed (raw DEFLATE,
// RFC 1951) when that saves at least a tenth: bounce reports and batched
// webhook payloads are text and shrink to a third or less, which is that
// much less to write, to the table and to the WAL. raw_messages.
// deflated_size holds the length as received; the sha256 is of the bytes as
// received, and GetMessageBody gives them back.
const deflateMin = 1024

// deflateBody returns the compressed body and the length as received, or
// the body as it is and -1 when compressing does not pay.
func deflateBody(raw []byte) ([]byte, int) {
	if len(raw) < deflateMin {
		return raw, -1
	}
	var b bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&b)
	if _, err := w.Write(raw); err != nil || w.Close() != nil {
		return raw, -1
	}
	if b.Len() > len(raw)-len(raw)/10 {
		return raw, -1
	}
	return b.Bytes(), len(raw)
}

// deflaters keeps compressors for reuse: each holds hundreds of KiB of
// tables that are costly to allocate per body.
var deflaters = sync.Pool{New: func() any {
	w, err := flate.NewWriter(io.Discard, flate.BestSpeed)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return w
}}

// errBadBody means a stored compressed body does not inflate to its size.
var errBadBody = errors.New("store: stored body does not inflate to its size")

// inflateBody gives back the bytes as received of a body stored with
// deflated size (nil: as received).
func inflateBody(body []byte, size *int32) ([]byte, error) {
	if size == nil {
		return body, nil
	}
	r := flate.NewReader(bytes.NewReader(body))
	defer r.Close()
	// One byte more than the size says reads past a corrupt end.
	out, err := io.ReadAll(io.LimitReader(r, int64(*size)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadBody, err)
	}
	if len(out) != int(*size) {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errBadBody, len(out), *size)
	}
	return out, nil
}

package store

import (
	"bytes"
	"compress/flate"
	"encoding/json"
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
//
// New bodies are compressed at level 2 with preset dictionary 1
// (bodydict.go; raw_messages.deflate_dict, migration 00027): a 1.3 KB
// report deflates to 0.4 KB instead of 0.64 (BestSpeed ignores a
// dictionary). Rows stored before have no dictionary (deflate_dict NULL).
//
// The parse result of a compressed body is compressed after it, in the same
// stream (migration 00027): a result repeats the report's addresses,
// diagnostics and hosts, which the stream has just seen, so it costs a
// third of what it costs alone. The body is flushed (a sync flush, RFC 1951
// 3.2.4, leaves the stream byte-aligned) and stored with a final empty
// block added; raw_messages.result_deflated holds the rest of the stream,
// what compressing the result after the body added. The result is read
// back by inflating the body without its final block, followed by that
// rest, and skipping the body's bytes. A result that does not shrink by a
// tenth stays in raw_messages.result (jsonb), as do the results of rows
// stored before.
const deflateMin = 1024

// finalBlock ends a stream after a sync flush: an empty final block with
// fixed codes (BFINAL 1, BTYPE 01, end-of-block 0000000), two bytes.
var finalBlock = []byte{0x03, 0x00}

// resultMax bounds an inflated result: results are encoded by bounced
// itself, of inputs that are bounded, and stay far below it.
const resultMax = 16 << 20

// deflateBody returns what is stored of raw and its parse result (nil
// when there is none): the compressed body and the length as received, or
// the body as it is and -1 when compressing does not pay; and the
// compressed result, or nil when the result is stored as it is.
func deflateBody(raw, result []byte) (body []byte, size int, resultZ []byte) {
	if len(raw) < deflateMin {
		return raw, -1, nil
	}
	var b bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&b)
	if _, err := w.Write(raw); err != nil {
		return raw, -1, nil
	}
	if len(result) == 0 {
		if w.Close() != nil || b.Len() > len(raw)-len(raw)/10 {
			return raw, -1, nil
		}
		return b.Bytes(), len(raw), nil
	}
	if w.Flush() != nil {
		return raw, -1, nil
	}
	n := b.Len()
	if n+len(finalBlock) > len(raw)-len(raw)/10 {
		return raw, -1, nil
	}
	if _, err := w.Write(result); err != nil || w.Close() != nil {
		return raw, -1, nil
	}
	stream := b.Bytes()
	body = append(stream[:n:n], finalBlock...) // a copy: the rest follows in stream
	if rest := stream[n:]; len(rest) <= len(result)-len(result)/10 {
		resultZ = rest
	}
	return body, len(raw), resultZ
}

// bodyDictCurrent is the dictionary new bodies are compressed with
// (bodyDictSQL in the write path's SQL), and bodyDicts every dictionary a
// stored body may name.
const (
	bodyDictCurrent = 1
	bodyDictSQL     = "1"
)

var bodyDicts = map[int16][]byte{1: []byte(bodyDict1)}

// deflaters keeps compressors for reuse: each holds hundreds of KiB of
// tables that are costly to allocate per body.
var deflaters = sync.Pool{New: func() any {
	w, err := flate.NewWriterDict(io.Discard, 2, bodyDicts[bodyDictCurrent])
	if err != nil {
		panic(err) // only for an invalid level
	}
	return w
}}

// newInflater reads a stream compressed with dictionary dict (nil: none).
func newInflater(r io.Reader, dict *int16) (io.ReadCloser, error) {
	if dict == nil {
		return flate.NewReader(r), nil
	}
	d, ok := bodyDicts[*dict]
	if !ok {
		return nil, fmt.Errorf("%w: unknown dictionary %d", errBadBody, *dict)
	}
	return flate.NewReaderDict(r, d), nil
}

// errBadBody means a stored compressed body (or the result compressed
// after it) does not inflate to what it should.
var errBadBody = errors.New("store: stored body does not inflate to its size")

// inflateBody gives back the bytes as received of a body stored with
// deflated size (nil: as received) and dictionary dict (nil: none).
func inflateBody(body []byte, size *int32, dict *int16) ([]byte, error) {
	if size == nil {
		return body, nil
	}
	r, err := newInflater(bytes.NewReader(body), dict)
	if err != nil {
		return nil, err
	}
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

// inflateResult gives back the result compressed after a body stored
// with deflated size and dictionary dict (see deflateBody).
func inflateResult(body []byte, size int32, dict *int16, resultZ []byte) ([]byte, error) {
	if !bytes.HasSuffix(body, finalBlock) {
		return nil, fmt.Errorf("%w: the body does not end as one with a result after it", errBadBody)
	}
	r, err := newInflater(io.MultiReader(bytes.NewReader(body[:len(body)-len(finalBlock)]), bytes.NewReader(resultZ)), dict)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadBody, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, resultMax+1))
	if err != nil {
		return nil, fmt.Errorf("%w: result: %w", errBadBody, err)
	}
	if len(out) > resultMax || !json.Valid(out) {
		return nil, fmt.Errorf("%w: the result is not JSON", errBadBody)
	}
	return out, nil
}

package parse

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// The MIME reader below is deliberately small: bounce reports are read on
// a hot path, and a general MIME library allocates a reader, a header map
// and a buffered copy per part. Here the whole message is one byte slice;
// headers and parts are sub-slices of it, and only the parts the parser
// needs are decoded. Charsets still go through go-message's charset table.

const (
	maxDepth     = 8   // nested multiparts and enclosed messages
	maxParts     = 256 // leaf parts per message
	maxBoundary  = 200 // RFC 2046 allows 70; be lenient, but bounded
	maxHeaderLen = 256 << 10
)

// hfield is one header field; value is the raw bytes after the colon,
// folding included.
type hfield struct {
	name  []byte
	value []byte
}

// header is the header block of a message or part, in order.
type header []hfield

// get returns the first field called name, unfolded and trimmed.
func (h header) get(name string) string {
	for _, f := range h {
		if equalFoldBytes(f.name, name) {
			return unfold(f.value)
		}
	}
	return ""
}

// has reports whether a field called name is present.
func (h header) has(name string) bool {
	for _, f := range h {
		if equalFoldBytes(f.name, name) {
			return true
		}
	}
	return false
}

// text returns a field with RFC 2047 encoded words decoded.
func (h header) text(name string) string {
	return decodeWords(h.get(name))
}

func equalFoldBytes(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// unfold joins folded header lines and trims the result.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.TrimSpace(v))
	}
	out := make([]byte, 0, len(v))
	for _, c := range v {
		if c == '\n' || c == '\r' {
			continue
		}
		if c == '\t' {
			c = ' '
		}
		out = append(out, c)
	}
	return string(bytes.TrimSpace(out))
}

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes RFC 2047 encoded words, keeping the input on error.
// Raw 8-bit text that is not UTF-8 (RFC 6532 allows only UTF-8) is read
// as Windows-1252 first, as in bodies (see fromUndeclared8bit).
func decodeWords(s string) string {
	if !utf8.ValidString(s) {
		s = fromUndeclared8bit([]byte(s))
	}
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// readHeader splits b into its header fields and the body after the first
// empty line. A leading mbox "From " line is skipped; a line that is
// neither a field nor a continuation ends the header (the body starts
// there), so bodies that lack the empty line are still read.
// isBlank reports a line of nothing but spaces, tabs and CRs.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// trimSpaceTab cuts trailing spaces and tabs (bytes.TrimRight with a
// cutset builds the set on every call; headers have many lines).
func trimSpaceTab(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func readHeader(b []byte) (header, []byte) {
	var h header
	pos := 0
	if bytes.HasPrefix(b, []byte("From ")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, nil
		}
		pos = i + 1
	}
	vstart := -1 // value of the field being read: b[vstart:vend]
	vend := 0
	flush := func() {
		if vstart >= 0 {
			h[len(h)-1].value = b[vstart:vend]
			vstart = -1
		}
	}
	for pos < len(b) {
		next := len(b)
		lineEnd := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			lineEnd, next = pos+i, pos+i+1
		}
		line := b[pos:lineEnd]
		if isBlank(line) {
			flush()
			return h, b[next:]
		}
		if line[0] == ' ' || line[0] == '\t' {
			if vstart >= 0 {
				vend = lineEnd
			}
			pos = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isFieldName(line[:colon]) {
			if len(h) == 0 && pos < maxHeaderLen {
				pos = next // junk before the first field
				continue
			}
			flush()
			return h, b[pos:]
		}
		flush()
		h = append(h, hfield{name: trimSpaceTab(line[:colon])})
		vstart, vend = pos+colon+1, lineEnd
		pos = next
		if pos > maxHeaderLen {
			break
		}
	}
	flush()
	return h, b[pos:]
}

// isFieldName reports RFC 5322 field-name characters (printable ASCII but
// colon), allowing the trailing space some old mailers leave before it.
func isFieldName(b []byte) bool {
	b = trimSpaceTab(b)
	if len(b) == 0 || len(b) > 76 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// part is one leaf of a message's MIME tree.
type part struct {
	h         header
	body      []byte // as transferred: still base64 or quoted-printable
	mediaType string // lower case, "text/plain" when not given
	ctype     string // the whole Content-Type value, for its parameters
	depth     int
	broken    bool // a multipart whose boundary never occurs, read as text
}

// param returns a Content-Type parameter of the part.
func (p *part) param(name string) string { return ctParam(p.ctype, name) }

// decoded returns the part's body with its transfer encoding undone.
func (p *part) decoded() []byte {
	return decodeTransfer(p.h.get("Content-Transfer-Encoding"), p.body)
}

// text returns the part's body decoded to UTF-8 text.
func (p *part) text() string { return toUTF8(p.decoded(), p.param("charset")) }

// mediaTypeOf returns the lower-case type/subtype of a Content-Type value.
func mediaTypeOf(ct string) string {
	ct = strings.TrimSpace(ct)
	if i := strings.IndexAny(ct, "; \t"); i >= 0 {
		ct = ct[:i] // "text/plain charset=..." lacks its semicolon
	}
	if !strings.Contains(ct, "/") {
		return "text/plain"
	}
	return strings.ToLower(ct)
}

// ctParam returns one parameter of a Content-Type (or similar) value,
// unquoted; names compare case-insensitively. RFC 2231 continuations are
// not needed for the parameters a bounce parser reads.
func ctParam(ct, name string) string {
	i := strings.IndexByte(ct, ';')
	if i < 0 {
		return ""
	}
	rest := ct[i+1:]
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			val = strings.ReplaceAll(rest[1:min(end, len(rest))], `\`, "")
			rest = rest[min(end+1, len(rest)):]
		} else {
			end := strings.IndexAny(rest, "; \t")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		if strings.EqualFold(key, name) {
			return val
		}
		if j := strings.IndexByte(rest, ';'); j >= 0 {
			rest = rest[j:]
		} else {
			rest = ""
		}
	}
	return ""
}

// walkParts appends the leaves of an entity to out. Enclosed messages
// (message/rfc822 and friends) are leaves: a bounce parser wants their
// header, never reports nested inside them.
func walkParts(h header, body []byte, depth int, out []part) []part {
	ct := h.get("Content-Type")
	mt := mediaTypeOf(ct)
	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth {
		boundary := ctParam(ct, "boundary")
		if boundary != "" && len(boundary) <= maxBoundary {
			if subs, ok := splitMultipart(body, boundary); ok {
				for _, sub := range subs {
					if len(out) >= maxParts {
						break
					}
					sh, sb := readPartHeader(sub)
					if mt == "multipart/digest" && !sh.has("Content-Type") {
						// RFC 2046: a digest's parts are messages by default.
						out = append(out, part{h: sh, body: sb, mediaType: "message/rfc822", depth: depth + 1})
						continue
					}
					out = walkParts(sh, sb, depth+1, out)
				}
				return out
			}
		}
		// A multipart that cannot be split is read as text.
		return append(out, part{h: h, body: body, mediaType: "text/plain", ctype: ct, depth: depth, broken: true})
	}
	return append(out, part{h: h, body: body, mediaType: mt, ctype: ct, depth: depth})
}

// readPartHeader reads the header of a body part, which may be empty: a
// part that starts with an empty line has no fields at all.
func readPartHeader(b []byte) (header, []byte) {
	if len(b) > 0 && b[0] == '\n' {
		return nil, b[1:]
	}
	h, body := readHeader(b)
	if h == nil {
		return nil, b
	}
	return h, body
}

// splitMultipart returns the body parts between "--boundary" lines, or
// false when the boundary never occurs. A missing close delimiter ends the
// last part at the end of the input. It runs in time linear in body.
func splitMultipart(body []byte, boundary string) ([][]byte, bool) {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part's content
	pos := 0
	for pos < len(body) {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		at := pos + i
		pos = at + len(delim)
		if at > 0 && body[at-1] != '\n' {
			continue // not at the start of a line
		}
		closing := bytes.HasPrefix(body[pos:], []byte("--"))
		// The rest of the delimiter line may only hold white space.
		lineEnd := len(body)
		if j := bytes.IndexByte(body[pos:], '\n'); j >= 0 {
			lineEnd = pos + j
		}
		if !closing && len(bytes.TrimSpace(body[pos:lineEnd])) > 0 {
			continue
		}
		if start >= 0 {
			end := at
			if end > start && body[end-1] == '\n' {
				end-- // the newline before a delimiter belongs to it
			}
			parts = append(parts, body[start:max(start, end)])
			if len(parts) >= maxParts {
				return parts, true
			}
		}
		if closing {
			return parts, true
		}
		start = min(lineEnd+1, len(body))
		pos = start
	}
	if start < 0 {
		return nil, false
	}
	if start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts, true
}

// decodeTransfer undoes a Content-Transfer-Encoding leniently: bounce
// reports are often cut or mangled, and whatever decodes is worth having.
func decodeTransfer(cte string, b []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return decodeBase64(b)
	case "quoted-printable":
		return decodeQP(b)
	}
	return b
}

func decodeBase64(b []byte) []byte {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1] // a stray character cannot decode
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// decodeQP undoes quoted-printable: "=XX" escapes and "=" soft line
// breaks. Anything else, including a stray "=", is kept as it is.
func decodeQP(b []byte) []byte {
	if bytes.IndexByte(b, '=') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			i++ // soft line break
			continue
		}
		if i+2 < len(b) && b[i+1] == ' ' || i+2 < len(b) && b[i+1] == '\t' {
			// "= \n": a soft break with trailing white space
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if j < len(b) && b[j] == '\n' {
				i = j
				continue
			}
		}
		if i+2 < len(b) {
			if h, ok := unhex(b[i+1]); ok {
				if l, ok := unhex(b[i+2]); ok {
					out = append(out, h<<4|l)
					i += 2
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// toUTF8 converts text in the named charset to UTF-8. Undeclared
// ISO-2022-JP (common in Japanese carriers' bounces) is recognised by its
// escape sequence, and undeclared 8-bit text that is not UTF-8 is read as
// Windows-1252 (see fromUndeclared8bit). Unknown charsets leave the bytes
// as they are.
func toUTF8(b []byte, cs string) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		switch {
		case bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")):
			cs = "iso-2022-jp"
		case utf8.Valid(b):
			return string(b)
		default:
			return fromUndeclared8bit(b)
		}
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil && len(out) == 0 {
		return string(b)
	}
	return string(out)
}

// fromUndeclared8bit reads text declared as UTF-8 or ASCII, or not
// declared at all, that is not valid UTF-8: every valid UTF-8 sequence is
// kept, and each byte that starts none is read as Windows-1252 (a
// superset of Latin-1, which mail servers in Western Europe write in
// their diagnostics without saying so). Those bytes would otherwise end
// as U+FFFD and the words around them unreadable.
//
// QUIRK(localized-mta): a server writes its localized diagnostic
// ("Empfänger unbekannt") in Latin-1 into message/delivery-status, whose
// charset RFC 3464 leaves undeclared (testdata/quirks/latin1-delivery-status.eml).
func fromUndeclared8bit(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			r = charmap.Windows1252.DecodeByte(b[0])
		}
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

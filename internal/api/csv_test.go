package api_test

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/store"
)

// exportCSV reads a whole CSV export and returns its records, header first.
func exportCSV(t *testing.T, h *harness, token, query string) [][]string {
	t.Helper()
	r := h.doAs(token, "GET", "/v1/suppressions"+query, "", nil, true, "Accept", "text/csv")
	if r.status != http.StatusOK {
		t.Fatalf("export = %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, r.body)
	}
	return recs
}

// runnable reports a cell a spreadsheet would read as a formula.
func runnable(cell string) bool {
	return cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0]))
}

// TestCSVExportNeutralisesFormulas: text that arrives unauthenticated in a
// bounce, a tenant's note and addresses that look like formulas come out
// of every CSV export as text, never as a live formula, also in the
// admin's export of every tenant.
func TestCSVExportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	dsn := dsntest.DSN("csv1",
		dsntest.Rcpt{Address: "+1+1@example.com", Status: "5.1.1", Diagnostic: "=cmd|' /C calc'!A0"},
		dsntest.Rcpt{Address: "victim@example.com", Status: "5.1.1", Diagnostic: "@SUM(1+1)*cmd|' /C calc'!A0"})
	if r := h.do("POST", "/v1/messages", "message/rfc822", dsn, true); r.status != http.StatusCreated {
		t.Fatalf("POST bounce = %d %s", r.status, r.body)
	}
	admin := h.key("admin", "", store.KeyAdmin)
	tenant := h.key("acme", "acme", store.KeySuppressionsRead, store.KeySuppressionsWrite)
	for _, item := range []struct{ token, body string }{
		{admin, `{"email":"@SUM(1)@example.com","note":"=HYPERLINK(\"http://evil.example\",\"open\")"}`},
		{admin, `{"email":"-2+3@example.com","note":"\tsafe?"}`},
		{tenant, `{"email":"t@acme.example","note":"=HYPERLINK(\"http://evil.example\",\"click\")"}`},
	} {
		if r := h.doAs(item.token, "POST", "/v1/suppressions", "application/json", []byte(item.body), true); r.status != http.StatusCreated {
			t.Fatalf("POST %s = %d %s", item.body, r.status, r.body)
		}
	}
	recs := exportCSV(t, h, admin, "?sort=email")
	if len(recs) != 6 {
		t.Fatalf("admin export has %d records, want a header and 5 entries: %v", len(recs), recs)
	}
	cells := map[string]bool{}
	for _, rec := range recs[1:] {
		for i, cell := range rec {
			if runnable(cell) {
				t.Errorf("export cell %s = %q would run as a formula", recs[0][i], cell)
			}
			cells[cell] = true
		}
	}
	for _, want := range []string{"'+1+1@example.com", "'=cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0",
		"'@SUM(1)@example.com", `'=HYPERLINK("http://evil.example","open")`, "'-2+3@example.com", "'\tsafe?",
		`'=HYPERLINK("http://evil.example","click")`} {
		if !cells[want] {
			t.Errorf("the export has no cell %q", want)
		}
	}
	// The tenant's own export is neutralised too.
	for _, rec := range exportCSV(t, h, tenant, "")[1:] {
		for _, cell := range rec {
			if runnable(cell) {
				t.Errorf("tenant export cell %q would run as a formula", cell)
			}
		}
	}
}

// TestCSVImportExportImport: what is imported exports as text and imports
// back as it was. An apostrophe before a formula character is the
// spreadsheet's mark of text: the importer takes one off, as it does from
// its own exports.
func TestCSVImportExportImport(t *testing.T) {
	t.Parallel()
	values := []struct{ email, note, storedEmail, storedNote string }{
		{"=1+1@example.com", "=HYPERLINK(\"http://evil.example\")", "", ""},
		{"+tag@example.com", "+1", "", ""},
		{"-dash@example.com", "-1", "", ""},
		{"'=quoted@example.com", "'=text", "=quoted@example.com", "=text"},
		{"''+two@example.com", "''@two", "'+two@example.com", "'@two"},
		{"'plain@example.com", "'plain", "", ""},
		{"at@example.com", "@mention", "", ""},
		{"plain@example.com", "plain note, with a comma", "", ""},
	}
	var in bytes.Buffer
	w := csv.NewWriter(&in)
	_ = w.Write([]string{"email", "note"})
	for _, v := range values {
		_ = w.Write([]string{v.email, v.note})
	}
	w.Flush()
	first := newHarness(t, api.Options{})
	var res struct{ Added, Invalid int }
	first.do("POST", "/v1/suppressions/import", "text/csv", in.Bytes(), true).json(t, &res)
	if res.Added != len(values) || res.Invalid != 0 {
		t.Fatalf("first import = %+v, want %d added", res, len(values))
	}
	for _, v := range values {
		email, note := cmp.Or(v.storedEmail, v.email), cmp.Or(v.storedNote, v.note)
		var s store.Suppression
		if r := first.get("/v1/suppressions/" + url.PathEscape(email)); r.status != http.StatusOK || json.Unmarshal(r.body, &s) != nil || s.Email != email || s.Note != note {
			t.Errorf("imported %q = %d %s, want %q with note %q", v.email, r.status, r.body, email, note)
		}
	}
	r := first.doAs("", "GET", "/v1/suppressions?sort=email", "", nil, true, "Accept", "text/csv")
	second := newHarness(t, api.Options{})
	second.do("POST", "/v1/suppressions/import", "text/csv", r.body, true).json(t, &res)
	if res.Added != len(values) || res.Invalid != 0 {
		t.Fatalf("import of the export = %+v, want %d added", res, len(values))
	}
	pick := func(recs [][]string) []string {
		var out []string
		for _, rec := range recs {
			out = append(out, rec[0]+"|"+rec[1]+"|"+rec[15])
		}
		return out
	}
	a, b := pick(exportCSV(t, first, "", "?sort=email")), pick(exportCSV(t, second, "", "?sort=email"))
	if !slices.Equal(a, b) {
		t.Errorf("export after import of the export differs:\n%v\n%v", a, b)
	}
}

// repeatReader yields n bytes of b repeated, without holding them.
type repeatReader struct {
	b   byte
	n   int64
	eol int64 // a newline every eol bytes (0: none)
	i   int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := int64(len(p))
	k = min(k, r.n)
	for j := range k {
		p[j] = r.b
		if r.eol > 0 && (r.i+j)%r.eol == r.eol-1 {
			p[j] = '\n'
		}
	}
	r.i += k
	r.n -= k
	return int(k), nil
}

// TestCSVImportBounded: a huge field, line or quoted record is refused
// after a bounded read, not held in memory, and errors quote at most a
// short piece of a bad value.
func TestCSVImportBounded(t *testing.T) { //nolint:paralleltest // measures this process's allocations
	h := newHarness(t, api.Options{})
	for _, tt := range []struct {
		name string
		body io.Reader
	}{
		{"100 MB unquoted field", io.MultiReader(strings.NewReader("email\n"), &repeatReader{b: 'a', n: 100 << 20})},
		{"100 MB quoted field", io.MultiReader(strings.NewReader("email\n\""), &repeatReader{b: 'a', n: 100 << 20})},
		{"100 MB of quoted short lines", io.MultiReader(strings.NewReader("email,note\nx@example.com,\""), &repeatReader{b: 'a', n: 100 << 20, eol: 80})},
		{"100 MB header", &repeatReader{b: 'e', n: 100 << 20}},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		req, err := http.NewRequest("POST", h.srv.URL+"/v1/suppressions/import", tt.body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/csv")
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		runtime.ReadMemStats(&after)
		if resp.StatusCode != http.StatusBadRequest || len(body) > 400 {
			t.Errorf("%s: import = %d %s, want a short 400", tt.name, resp.StatusCode, body)
		}
		grew := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d KB allocated", tt.name, grew>>10)
		if grew > 32<<20 {
			t.Errorf("%s: the import allocated %d MB, want a bounded read", tt.name, grew>>20)
		}
	}
	// A long bad value is quoted short in the row errors.
	long := strings.Repeat("x", 20000)
	var res struct {
		Invalid int
		Errors  []struct{ Error string }
	}
	h.do("POST", "/v1/suppressions/import", "text/csv", []byte("email,scope,note\n"+long+",,\nok@example.com,"+long+",\n"), true).json(t, &res)
	if res.Invalid != 2 || len(res.Errors) != 2 {
		t.Fatalf("import of long bad values = %+v, want 2 invalid rows", res)
	}
	for _, e := range res.Errors {
		if len(e.Error) > 200 {
			t.Errorf("row error is %d bytes long: %.100q…", len(e.Error), e.Error)
		}
	}
	if !strings.Contains(fmt.Sprint(res.Errors), "20000 bytes") {
		t.Errorf("row errors %v do not say how long the value was", res.Errors)
	}
}

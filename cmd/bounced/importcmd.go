package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/bounced/bounced/internal/config"
)

const importText = `Uploads a CSV of suppressions to a running bounced (POST
/v1/suppressions/import), streaming it with a progress bar on a terminal.
The header names the columns: email (required), scope, reason, note,
expires_at. Rows already suppressed are left alone, so importing a file
twice adds nothing. Bad rows are reported by line and make the exit status
1; the good ones are imported.

The API token comes from BOUNCED_API_TOKEN or the file named by
BOUNCED_API_TOKEN_FILE (or --token-file); not needed while bounced has no
keys and listens on loopback.
`

// importResult is the answer of POST /v1/suppressions/import.
type importResult struct {
	Imported int `json:"imported"`
	Added    int `json:"added"`
	Existing int `json:"existing"`
	Invalid  int `json:"invalid"`
	Errors   []struct {
		Line  int    `json:"line"`
		Error string `json:"error"`
	} `json:"errors"`
}

// importCmd is `bounced import FILE`: the CSV import over the API, so the
// server's checks, audit trail and limits apply as they do to curl.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("import", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	base := fset.String("url", "", "bounced's base URL (default: BOUNCED_LISTEN's address, on loopback)")
	tokenFile := fset.String("token-file", getenv("BOUNCED_API_TOKEN_FILE"), "file holding the API token (env BOUNCED_API_TOKEN_FILE)")
	scope := fset.String("scope", "", "scope of rows without a scope column (default global)")
	reason := fset.String("reason", "", "reason of rows without a reason column: manual, unsubscribe or import (default import)")
	note := fset.String("note", "", "note recorded with rows without a note column")
	progress := fset.String("progress", "auto", "progress bar: auto (on a terminal), always or never")
	asJSON := fset.Bool("json", false, "print the server's answer as JSON")
	timeout := fset.Duration("timeout", time.Hour, "give up after")
	h := help{name: "import", text: importText, flags: func(fs *flag.FlagSet) {
		fset.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	}}
	if err := fset.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fset.NArg() != 1 {
		return usageError{"import: give exactly one CSV file, or - for standard input (bounced import --help)"}
	}
	if *progress != "auto" && *progress != "always" && *progress != "never" {
		return usageError{fmt.Sprintf("import: --progress %q is not auto, always or never", *progress)}
	}
	if *base == "" {
		listen := cmp.Or(getenv("BOUNCED_LISTEN"), config.ListenDefault)
		u, err := localURL(listen)
		if err != nil {
			return usageError{fmt.Sprintf("import: BOUNCED_LISTEN %q: %v", listen, err)}
		}
		*base = u
	}
	endpoint, err := url.Parse(strings.TrimRight(*base, "/") + "/v1/suppressions/import")
	if err != nil || (endpoint.Scheme != "http" && endpoint.Scheme != "https") || endpoint.Host == "" {
		return usageError{fmt.Sprintf("import: --url %q is not an http(s) URL", *base)}
	}
	q := endpoint.Query()
	for name, v := range map[string]string{"scope": *scope, "reason": *reason, "note": *note} {
		if v != "" {
			q.Set(name, v)
		}
	}
	endpoint.RawQuery = q.Encode()
	token := getenv("BOUNCED_API_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("import: token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}

	name := fset.Arg(0)
	body := stdin
	size := int64(-1) // unknown: the bar counts bytes
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		body = f
	}
	var bar *progressbar.ProgressBar
	if *progress == "always" || *progress == "auto" && isTerminal(stderr) {
		bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("uploading"),
			progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true))
		reader := progressbar.NewReader(body, bar)
		body = &reader
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	resp, err := http.DefaultClient.Do(req)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("import: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("import: %s answered %s: %s", endpoint.Redacted(), resp.Status, problemText(answer))
	}
	var res importResult
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("import: unexpected answer: %w", err)
	}
	if *asJSON {
		_, _ = stdout.Write(answer)
	} else {
		fmt.Fprintf(stdout, "%s: %d rows imported, %d addresses added, %d already suppressed, %d invalid\n",
			name, res.Imported, res.Added, res.Existing, res.Invalid)
		for _, e := range res.Errors {
			fmt.Fprintf(stdout, "line %d: %s\n", e.Line, e.Error)
		}
	}
	if res.Invalid > 0 {
		return fmt.Errorf("import: %d invalid rows were skipped", res.Invalid)
	}
	return nil
}

// problemText is the title and detail of a problem+json body, or the body.
func problemText(body []byte) string {
	var p struct{ Title, Detail string }
	if json.Unmarshal(body, &p) == nil && p.Title != "" {
		if p.Detail != "" {
			return p.Title + ": " + p.Detail
		}
		return p.Title
	}
	return strings.TrimSpace(string(body))
}

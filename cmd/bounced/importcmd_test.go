package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/dbtest"
)

func TestImportCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const admin = "import-test-admin-token-0123456789"
	base, _ := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t), "BOUNCED_ADMIN_KEY", admin))
	dir := t.TempDir()
	csvFile := filepath.Join(dir, "list.csv")
	csv := "email,reason\nimport-a@example.com,\nImport-B@Example.COM,unsubscribe\nnot-an-address,\nimport-c@example.com,\n"
	if err := os.WriteFile(csvFile, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Without a token the server refuses, and the command says so.
	err := run(ctx, []string{"import", "--url", base, csvFile}, env(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("import without a token = %v, want the 401", err)
	}

	var out bytes.Buffer
	err = run(ctx, []string{"import", "--url", base, "--token-file", tokenFile, "--note", "from the old tool", csvFile}, env(), nil, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "1 invalid") {
		t.Errorf("import with a bad row = %v, want an error naming it", err)
	}
	if want := "3 rows imported, 3 addresses added, 0 already suppressed, 1 invalid"; !strings.Contains(out.String(), want) {
		t.Errorf("import printed %q, want %q", out.String(), want)
	}
	if !strings.Contains(out.String(), "line 4: ") {
		t.Errorf("import printed %q, want the bad row's line", out.String())
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/suppressions/import-b@example.com", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sup struct{ Reason, Note string }
	_ = json.NewDecoder(resp.Body).Decode(&sup)
	resp.Body.Close()
	if resp.StatusCode != 200 || sup.Reason != "unsubscribe" {
		t.Errorf("GET the imported address = %d %+v, want 200 with reason unsubscribe", resp.StatusCode, sup)
	}

	// Again from standard input, with the bar forced on: nothing new.
	out.Reset()
	var bar bytes.Buffer
	err = run(ctx, []string{"import", "--url", base, "--json", "--progress", "always", "-"},
		env("BOUNCED_API_TOKEN", admin), strings.NewReader(csv), &out, &bar)
	var res importResult
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil || res.Added != 0 || res.Existing != 3 || res.Invalid != 1 {
		t.Errorf("second import --json = %q (%v), want 0 added, 3 existing, 1 invalid", out.String(), jerr)
	}
	if err == nil {
		t.Error("second import: the bad row no longer fails the command")
	}
	if !strings.Contains(bar.String(), "uploading") {
		t.Errorf("--progress always drew no bar: %q", bar.String())
	}

	// Without --url it finds bounced where BOUNCED_LISTEN says, on loopback.
	out.Reset()
	listen := "0.0.0.0:" + base[strings.LastIndex(base, ":")+1:]
	err = run(ctx, []string{"import", "-"}, env("BOUNCED_LISTEN", listen, "BOUNCED_API_TOKEN", admin), strings.NewReader("email\nimport-a@example.com\n"), &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "1 rows imported, 0 addresses added, 1 already suppressed") {
		t.Errorf("import at BOUNCED_LISTEN %s = %q, %v", listen, out.String(), err)
	}

	var ue usageError
	if err := run(ctx, []string{"import", csvFile}, env("BOUNCED_LISTEN", "no-port"), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("import with a bad BOUNCED_LISTEN = %v, want a usage error", err)
	}
	for _, args := range [][]string{
		{"import"}, {"import", "a.csv", "b.csv"}, {"import", "--progress", "sometimes", csvFile},
		{"import", "--url", "ftp://example.com", csvFile},
	} {
		if err := run(ctx, args, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%v = %v, want a usage error", args, err)
		}
	}
	if err := run(ctx, []string{"import", "--url", base, filepath.Join(dir, "missing.csv")}, env(), nil, io.Discard, io.Discard); err == nil {
		t.Error("importing a missing file succeeded")
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainFile: explain takes a bounce file as well as codes, and
// shows for each recipient what decided its class; a code keeps its
// explanation, and a name that is neither fails with a usage error.
func TestExplainFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "access.eml")
	bounce := "From: MAILER-DAEMON@mx.example.org\nTo: s@example.org\nSubject: Undelivered Mail Returned to Sender\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\n" +
		"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; member@example.com\nAction: failed\nStatus: 5.0.0\n" +
		"Diagnostic-Code: smtp; 550 <member@example.com>: Recipient address rejected. (in reply to RCPT TO command)\n\n--B--\n"
	if err := os.WriteFile(file, []byte(bounce), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", "5.1.1", file}, env(), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Bad destination mailbox address", "recipient: member@example.com",
		"reason:   user_unknown (class soft, suppress: false)", "evidence: phrase:", "note:     ambiguous"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"explain", "--json", file}, env(), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var got fileExplanation
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("explain --json: %v\n%s", err, out.String())
	}
	if len(got.Report.Recipients) != 1 || got.Report.Recipients[0].Evidence.Rule == "" || got.Report.Recipients[0].Suppress || len(got.Codes) != 1 {
		t.Errorf("explain --json = %s, want one unsuppressed recipient with evidence and its code", out.String())
	}
	var ue usageError
	if err := run(context.Background(), []string{"explain", filepath.Join(dir, "missing.eml")}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("explain missing.eml = %v, want a usage error", err)
	}
}

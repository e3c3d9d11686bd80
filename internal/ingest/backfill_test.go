package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// expectSummary is what a backfill of msgs must count by kind and reason.
func expectSummary(msgs []corpusMessage) (kinds, reasons map[string]int) {
	kinds, reasons = map[string]int{}, map[string]int{}
	for _, m := range msgs {
		rep, err := parse.Parse(m.raw)
		kind := string(rep.Kind)
		if err != nil && len(rep.Recipients) == 0 {
			kind = "unparsed"
		}
		kinds[kind]++
		if kind == "unparsed" {
			continue
		}
		for _, r := range rep.Recipients {
			reasons[string(r.Reason)]++
		}
	}
	return kinds, reasons
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBackfillMaildir(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	dir := filepath.Join(t.TempDir(), "Maildir")
	msgs := corpus(t, 3)
	deliver(t, dir, msgs[:20])
	// Older mail already read by a mail client sits in cur/.
	deliver(t, dir, msgs[20:])
	for _, name := range files(t, filepath.Join(dir, "new"))[:10] {
		if err := os.Rename(filepath.Join(dir, "new", name), filepath.Join(dir, "cur", name+":2,S")); err != nil {
			t.Fatal(err)
		}
	}
	var progress []int64
	sum, err := ingest.Backfill(context.Background(), mail, dir, ingest.BackfillOptions{
		ProgressFunc: func(done, total int64) { progress = append(progress, done, total) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := expectEvents(msgs)
	if sum.Format != "maildir" || sum.Messages != len(msgs) || sum.Stored != len(want) || sum.Duplicates != len(msgs)-len(want) {
		t.Errorf("summary = %+v; want maildir, %d messages, %d stored", sum, len(msgs), len(want))
	}
	kinds, reasons := expectSummary(msgs)
	if !sameCounts(sum.Kinds, kinds) {
		t.Errorf("kinds = %v, want %v", sum.Kinds, kinds)
	}
	if !sameCounts(sum.Reasons, reasons) {
		t.Errorf("reasons = %v, want %v", sum.Reasons, reasons)
	}
	if n := len(progress); n == 0 || progress[n-2] != progress[n-1] {
		t.Errorf("progress ended at %v, want done == total", progress[max(0, n-2):])
	}
	conn := pgConn(t, url)
	assertExactlyOnce(t, conn, want)
	if n := countRows(t, conn, `SELECT count(*) FROM raw_messages WHERE source = 'maildir' AND provider = 'Maildir'`); n != len(want) {
		t.Errorf("%d messages with source maildir, provider Maildir; want %d", n, len(want))
	}
	// The Maildir is left as it was.
	if n := len(files(t, filepath.Join(dir, "new"))) + len(files(t, filepath.Join(dir, "cur"))); n != len(msgs) {
		t.Errorf("backfill changed the Maildir: %d files, want %d", n, len(msgs))
	}
	// Running it again records nothing.
	again, err := ingest.Backfill(context.Background(), mail, dir, ingest.BackfillOptions{})
	if err != nil || again.Stored != 0 || again.Duplicates != len(msgs) {
		t.Errorf("second backfill = %+v, %v; want all %d duplicates", again, err, len(msgs))
	}
}

func TestBackfillMbox(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	msgs := corpus(t, 4)
	var mbox bytes.Buffer
	for _, m := range msgs {
		if !bytes.HasSuffix(m.raw, []byte("\n")) {
			t.Fatalf("%s does not end with a line end", m.name)
		}
		fmt.Fprintf(&mbox, "From MAILER-DAEMON Sat Jan  6 10:00:00 2024\n")
		for line := range bytes.Lines(m.raw) {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				mbox.WriteByte('>')
			}
			mbox.Write(line)
		}
		mbox.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "bounces.mbox")
	if err := os.WriteFile(path, mbox.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.Backfill(context.Background(), mail, path, ingest.BackfillOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := expectEvents(msgs)
	if sum.Format != "mbox" || sum.Messages != len(msgs) || sum.Stored != len(want) {
		t.Errorf("summary = %+v; want mbox, %d messages, %d stored", sum, len(msgs), len(want))
	}
	kinds, _ := expectSummary(msgs)
	if !sameCounts(sum.Kinds, kinds) {
		t.Errorf("kinds = %v, want %v", sum.Kinds, kinds)
	}
	// The stored bytes are the original messages: the same sha256s.
	conn := pgConn(t, url)
	assertExactlyOnce(t, conn, want)
	if n := countRows(t, conn, `SELECT count(*) FROM raw_messages WHERE source = 'mbox' AND provider = 'bounces.mbox'`); n != len(want) {
		t.Errorf("%d messages with source mbox; want %d", n, len(want))
	}
}

func TestBackfillErrors(t *testing.T) {
	t.Parallel()
	mail, _, _ := newMail(t)
	dir := t.TempDir()
	notMbox := filepath.Join(dir, "note.txt")
	os.WriteFile(notMbox, []byte("Subject: hi\n\nnot an mbox\n"), 0o600)
	notMaildir := filepath.Join(dir, "plain")
	os.Mkdir(notMaildir, 0o700)
	cases := []struct {
		name, path string
		want       error
		wantText   string
	}{
		{"missing path", filepath.Join(dir, "nope"), os.ErrNotExist, ""},
		{"not an mbox", notMbox, ingest.ErrNotMbox, ""},
		{"not a maildir", notMaildir, nil, "not a Maildir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ingest.Backfill(context.Background(), mail, tc.path, ingest.BackfillOptions{})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || tc.wantText != "" && !bytes.Contains([]byte(err.Error()), []byte(tc.wantText)) {
				t.Errorf("Backfill(%s) = %v, want %v %q", tc.path, err, tc.want, tc.wantText)
			}
		})
	}
	t.Run("database down", func(t *testing.T) {
		t.Parallel()
		down, err := store.Open(context.Background(), fmt.Sprintf("postgres://bounced@127.0.0.1:%d/x?connect_timeout=2", freePort(t)), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		downMail, _ := ingest.NewMail(down, ingest.MailOptions{})
		md := filepath.Join(t.TempDir(), "Maildir")
		deliver(t, md, corpus(t, 100))
		if _, err := ingest.Backfill(context.Background(), downMail, md, ingest.BackfillOptions{}); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Backfill with the database down = %v, want ErrUnavailable", err)
		}
	})
}

package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/bounced/bounced/internal/ingest"
)

const ingestText = `Imports every message of an existing Maildir (cur/ and new/, left as they
are) or mbox file once, then prints how many messages of each kind and
recipients of each reason it read. Messages stored before are skipped, so
running it twice is safe. Beside a running bounced serve on the private
PostgreSQL, it uses that server.
`

// ingestCmd is `bounced ingest maildir PATH`: a one-shot backfill.
func ingestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var progress, provider string
	h := help{name: "ingest", text: ingestText, settings: true, flags: func(fs *flag.FlagSet) {
		fs.StringVar(&progress, "progress", "auto", "progress bar: auto (on a terminal), always or never")
		fs.StringVar(&provider, "provider", "", "name recorded with each message (default: the file or directory name)")
	}}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		h.write(stdout)
		return nil
	}
	if len(args) == 0 || (args[0] != "maildir" && args[0] != "mbox") {
		h.write(stderr)
		return usageError{"ingest: say what to import: bounced ingest maildir PATH"}
	}
	cfg, rest, done, err := loadCommand(h, args[1:], getenv, stdout)
	if done {
		return err
	}
	if len(rest) != 1 {
		return usageError{"ingest maildir: give exactly one Maildir directory or mbox file (bounced ingest --help)"}
	}
	if progress != "auto" && progress != "always" && progress != "never" {
		return usageError{fmt.Sprintf("ingest maildir: --progress %q is not auto, always or never", progress)}
	}
	path := rest[0]
	if _, err := os.Stat(path); err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	db, closeDB, err := openDBShared(ctx, cfg, logger, nil, true)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: logger, MaxRecipients: int(cfg.MaxRecipientsPerMessage),
		Trust: ingest.Trust(cfg.MailTrust), Sent: db, Lookup: db})
	if err != nil {
		return err
	}
	opts := ingest.BackfillOptions{Provider: provider, MaxMessageBytes: cfg.MaxBodyBytes, VERP: verpOf(cfg.Mailboxes)}
	var bar *progressbar.ProgressBar
	if progress == "always" || progress == "auto" && isTerminal(stderr) {
		opts.ProgressFunc = func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("importing"),
					progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true))
			}
			_ = bar.Set64(done)
		}
	}
	sum, err := ingest.Backfill(ctx, mail, path, opts)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	printSummary(stdout, path, sum)
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printSummary writes what a backfill did: totals, then messages per kind
// and recipients per reason, most first.
func printSummary(w io.Writer, path string, s ingest.BackfillSummary) {
	fmt.Fprintf(w, "%s (%s): %d messages read, %d stored, %d already stored, %d unparsed, %d too large, %d unreadable\n",
		path, s.Format, s.Messages, s.Stored, s.Duplicates, s.Unparsed, s.TooLarge, s.Unreadable)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	table := func(title, unit string, counts map[string]int) {
		if len(counts) == 0 {
			return
		}
		fmt.Fprintf(tw, "\n%s\t%s\n", title, unit)
		keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
			return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
		})
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\n", k, counts[k])
		}
	}
	table("kind", "messages", s.Kinds)
	table("reason", "recipients", s.Reasons)
	tw.Flush()
}

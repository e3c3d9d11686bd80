package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest/webhook"
)

// commandInfo is one line of the top-level help: a command, how it is
// called, and what it does.
type commandInfo struct {
	name     string
	synopsis string // flags and arguments after the name
	summary  string // what it does; may run over several lines
}

// commandList is every command, in the order the help lists them. Each
// command's own help ("bounced NAME --help") shows the same flags, and a
// test keeps the two and the README in step.
func commandList() []commandInfo {
	return []commandInfo{
		{"serve", "[flags]", "run the service (the default when no command is given)"},
		{"migrate", "[flags]", "apply database migrations and exit"},
		{"parse", "[--pretty] [--jobs N] [--progress auto|always|never] [--verp-prefix P] [--recipient-header H,...] FILE|DIR|- ...",
			"parse bounce messages; one JSON object per file per line"},
		{"explain", "[--json] CODE|FILE ...", "explain an enhanced status code (5.1.1) or an SMTP reply code (550), or what decided each recipient of a bounce file"},
		{"apikey", "create|list|revoke ...", "create, list and revoke API keys (bounced apikey --help)"},
		{"ingest", "maildir [--progress auto|always|never] [--provider NAME] PATH",
			"import a Maildir or mbox file once; prints counts per kind and reason"},
		{"import", "[--scope S] [--reason manual|unsubscribe|import] [--note N] [--progress auto|always|never] [--json] [--url U] [--token-file F] [--timeout D] FILE|-",
			"upload a CSV of suppressions to a running bounced (POST /v1/suppressions/import)"},
		{"check-config", "[flags]", "print what the configuration enables (secrets masked) and check the\ndatabase, listen addresses, IMAP logins, Maildirs, certificates and webhook keys"},
		{"stats", "[--bucket hour|day] [--group-by domain|provider|source|reason|mailbox_provider] [--groups N] [--since T] [--until T] [--tenant T]",
			"bounce and complaint rates (GET /v1/stats) as a table"},
		{"healthcheck", "[--addr A] [--timeout D]", "probe a running bounced's /healthz (container health checks)"},
		{"webhook-receiver", "[--listen A] --secret S|--secret-file F [--count N] [--timeout D]",
			"receive outbound webhooks, check their signatures and print them (to try a subscription)"},
		{"version", "", "print the version, commit and Go version"},
		{"help", "[COMMAND]", "this list, or a command's own help"},
	}
}

// topUsage is `bounced --help`.
func topUsage() string {
	var b strings.Builder
	b.WriteString("usage: bounced <command> [flags] [args]\n\ncommands:\n")
	for _, c := range commandList() {
		fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(c.name+" "+c.synopsis))
		for line := range strings.Lines(c.summary) {
			fmt.Fprintf(&b, "      %s", line)
		}
		b.WriteString("\n")
	}
	b.WriteString(`
Every command that reaches the database takes serve's settings: BOUNCED_*
variables or flags (bounced serve --help lists them). Without a database
URL they use the private PostgreSQL in ./.bounced, shared with a running
bounced serve.

Run 'bounced help COMMAND' or 'bounced COMMAND --help' for a command's flags.
`)
	return b.String()
}

// synopsis is a command's usage line as the top-level help gives it.
func synopsis(name string) string {
	for _, c := range commandList() {
		if c.name == name {
			return strings.TrimSpace("usage: bounced " + c.name + " " + c.synopsis)
		}
	}
	return "usage: bounced " + name
}

// help is one command's help: its usage line and description, its own
// flags, and whether it also takes serve's settings.
type help struct {
	name  string              // the command as typed: "apikey create"
	usage string              // the usage line, when not the top-level help's
	text  string              // description, after the usage line
	flags func(*flag.FlagSet) // registers the command's own flags; nil when none
	// settings says the command also reads serve's BOUNCED_* settings;
	// allSettings that its help lists them all, as its flags (serve).
	settings, allSettings bool
}

// write prints the help to w.
func (h help) write(w io.Writer) {
	fmt.Fprintln(w, cmp.Or(h.usage, synopsis(h.name)))
	if h.text != "" {
		fmt.Fprintf(w, "\n%s", h.text)
	}
	if h.flags != nil || h.allSettings {
		fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
		fs.SetOutput(w)
		if h.flags != nil {
			h.flags(fs)
		}
		if h.allSettings {
			c := config.New(webhook.Settings()...)
			c.RegisterFlags(fs)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
	if h.settings && !h.allSettings {
		fmt.Fprintln(w, "\nIt also takes serve's settings (BOUNCED_* variables, or flags such as\n--database-url and --data-dir): bounced serve --help lists them.")
	}
}

// flagsFailed turns an error from parsing a command's flags into what the
// command returns: on -h or --help its help, on standard output, and
// success; otherwise a usage error that says where the help is.
func flagsFailed(err error, h help, stdout io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		h.write(stdout)
		return nil
	}
	return usageError{fmt.Sprintf("%s: %v (bounced %s --help lists the flags)", h.name, err, h.name)}
}

// loadCommand reads serve's settings and the command's own flags (h.flags)
// from args; on -h it prints the command's help. done reports that the
// command has nothing more to do (help was printed) or failed.
func loadCommand(h help, args []string, getenv func(string) string, stdout io.Writer) (cfg config.Config, rest []string, done bool, err error) {
	cfg, rest, err = config.LoadCommand(h.name, args, getenv, io.Discard, h.flags, webhook.Settings()...)
	if err != nil {
		var fe flagError
		if errors.As(err, &fe) || errors.Is(err, flag.ErrHelp) {
			return cfg, nil, true, flagsFailed(err, h, stdout)
		}
		return cfg, nil, true, usageError{err.Error()}
	}
	return cfg, rest, false, nil
}

// flagError is what config.LoadCommand returns for a flag it cannot parse.
type flagError = config.FlagError

// serveHelp is the help of a command whose flags are serve's settings,
// each also a BOUNCED_* variable.
func serveHelp(name, text string) help {
	return help{name: name, text: text, settings: true, allSettings: true}
}

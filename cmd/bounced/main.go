// Command bounced reads bounces, complaints and delivery reports, keeps a
// suppression list in PostgreSQL and serves it over a REST API.
//
//	bounced serve          run the service (the default)
//	bounced migrate        apply database migrations
//	bounced parse FILE...  parse bounce messages, print JSON Lines
//	bounced explain CODE|FILE  explain an SMTP status code or a bounce
//	bounced apikey ...     create, list and revoke API keys
//	bounced healthcheck    probe a running bounced (for containers)
//	bounced ingest maildir PATH  import a Maildir or mbox file once
//	bounced import FILE    upload a CSV of suppressions to a running bounced
//	bounced check-config   validate the configuration and what it reaches
//	bounced stats          bounce and complaint rates in a table
//	bounced version        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version and commit are set at build time with -ldflags "-X
// main.version=... -X main.commit=..."; without them the commit comes
// from the VCS stamp Go adds to builds in a checkout.
var (
	version = "dev"
	commit  = ""
)

type build struct{ version, commit, goVersion, platform string }

// buildInformation says what this binary is.
func buildInformation() build {
	b := build{version: version, commit: commit, goVersion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok && b.commit == "" {
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.commit != "" {
			b.commit += "-dirty"
		}
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

// usageError makes run's caller exit with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "bounced:", err)
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

const usage = `usage: bounced <command> [flags] [args]

commands:
  serve              run the HTTP service (default when no command is given)
  migrate            apply database migrations and exit
  parse [--pretty] [--jobs N] [--verp-prefix P] [--recipient-header H] FILE|DIR|- ...
                     parse bounce messages; one JSON object per file per line
  explain [--json] CODE|FILE ...
                     explain an enhanced status code (5.1.1) or SMTP reply code (550), or
                     what decided each recipient of a bounce message file
  apikey create|list|revoke ...
                     manage API keys (bounced apikey -h)
  ingest maildir [--progress auto|always|never] PATH
                     import a Maildir or mbox file once; prints counts per kind and reason
  import [--scope S] [--reason R] [--note N] [--progress auto|always|never] FILE|-
                     upload a CSV of suppressions to a running bounced
  check-config       print what the configuration enables (secrets masked) and check the
                     database, listen addresses, IMAP logins, Maildirs and webhook keys
  stats [--bucket hour|day] [--group-by G] [--since T] [--until T] [--tenant T]
                     bounce and complaint rates (GET /v1/stats) as a table
  healthcheck        probe a running bounced's /healthz (for container health checks)
  version            print the version, commit and Go version

Run 'bounced <command> -h' for a command's flags.
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "parse":
		return parseFiles(args, stdin, stdout, stderr)
	case "explain":
		return explain(args, stdout, stderr)
	case "apikey":
		return apikey(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args, getenv, stdout, stderr)
	case "ingest":
		return ingestCmd(ctx, args, getenv, stdout, stderr)
	case "import":
		return importCmd(ctx, args, getenv, stdin, stdout, stderr)
	case "check-config":
		return checkConfig(ctx, args, getenv, stdout, stderr)
	case "stats":
		return stats(ctx, args, getenv, stdout, stderr)
	case "version":
		b := buildInformation()
		fmt.Fprintln(stdout, "bounced", b.version)
		fmt.Fprintln(stdout, "commit", b.commit)
		fmt.Fprintf(stdout, "built with %s for %s\n", b.goVersion, b.platform)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

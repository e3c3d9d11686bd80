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
//	bounced webhook-receiver  receive and verify outbound webhooks (to try a subscription)
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

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			cmd, args = "help", args[1:]
		case a != "" && a[0] != '-':
			cmd, args = a, args[1:]
		}
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
	case "webhook-receiver":
		return webhookReceiver(ctx, args, stdout, stderr)
	case "version":
		return versionCmd(args, stdout)
	case "help":
		if len(args) == 0 || args[0] == "help" {
			fmt.Fprint(stdout, topUsage())
			return nil
		}
		if !knownCommand(args[0]) {
			fmt.Fprint(stderr, topUsage())
			return usageError{fmt.Sprintf("help: unknown command %q", args[0])}
		}
		return run(ctx, append(append([]string{}, args...), "--help"), getenv, stdin, stdout, stderr)
	}
	fmt.Fprint(stderr, topUsage())
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func knownCommand(name string) bool {
	for _, c := range commandList() {
		if c.name == name {
			return true
		}
	}
	return false
}

func versionCmd(args []string, stdout io.Writer) error {
	h := help{name: "version", text: "Prints the version, the commit it was built from, the Go version and the platform.\n"}
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("version: unexpected argument %q", fs.Arg(0))}
	}
	b := buildInformation()
	fmt.Fprintln(stdout, "bounced", b.version)
	fmt.Fprintln(stdout, "commit", b.commit)
	fmt.Fprintf(stdout, "built with %s for %s\n", b.goVersion, b.platform)
	return nil
}

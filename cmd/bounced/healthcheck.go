package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/bounced/bounced/internal/config"
)

// healthcheck asks a running bounced's /healthz, for container
// HEALTHCHECKs on images without curl. The address comes from the same
// BOUNCED_LISTEN the server reads.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	listen := config.ListenDefault
	if v := getenv("BOUNCED_LISTEN"); v != "" {
		listen = v
	}
	addr := fset.String("addr", listen, "address bounced listens on")
	timeout := fset.Duration("timeout", 3*time.Second, "give up after")
	h := help{name: "healthcheck", flags: func(fs *flag.FlagSet) {
		fset.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	}, text: "Asks a running bounced's /healthz and exits 0 when it answers 200, else 1:\nfor container health checks on images without curl. --addr defaults to\nBOUNCED_LISTEN's address, reached on loopback.\n"}
	if err := fset.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Sprintf("healthcheck: unexpected argument %q", fset.Arg(0))}
	}
	base, err := localURL(*addr)
	if err != nil {
		return usageError{fmt.Sprintf("healthcheck: bad address %q: %v", *addr, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %s", resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// localURL is the base URL a client on this host reaches a listen address
// at: all interfaces (or no host) means loopback.
func localURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

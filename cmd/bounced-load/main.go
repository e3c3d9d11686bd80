// Command bounced-load sends signed webhook load to a bounced on this
// machine, retries whatever is not acknowledged, and checks afterwards
// that every acknowledged event is stored exactly once.
//
//	bounced-load -init-keys DIR          make keys; print the env bounced needs
//	bounced-load -provider generic -requests 200000 -duration 30s -concurrency 64 \
//	    -keys DIR -check-database postgres://... (or private)
package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/loadgen"
	"github.com/bounced/bounced/internal/pgserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bounced-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bounced-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o         loadgen.Options
		initKeys  = fs.String("init-keys", "", "write fresh keys to this directory, print the BOUNCED_* settings that accept them, and exit")
		keys      = fs.String("keys", "", "directory written by -init-keys")
		checkDB   = fs.String("check-database", "", "after the run, check the events in this PostgreSQL (bounced's database URL, or private: the private server in BOUNCED_DATA_DIR, .bounced by default)")
		asJSON    = fs.Bool("json", false, "print the result as JSON")
		checkOnly = fs.Bool("check-only", false, "only check the database for -run-id (with -requests acknowledged requests assumed)")
		dbwork    = fs.Bool("dbwork", false, "measure the database work per stored event of each ingest path on a fresh private PostgreSQL (see make dbwork), and exit")
		dbBounced = fs.String("bounced", "bin/bounced", "with -dbwork: the bounced binary to measure")
		dbPaths   = fs.String("paths", "", "with -dbwork: single, batched and dsn, comma-separated (empty: all)")
		dbScale   = fs.Float64("scale", 1, "with -dbwork: multiply each path's requests by this")
		verbose   = fs.Bool("v", false, "with -dbwork: also WAL records by resource manager and the busiest statements")
	)
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8025", "bounced's base URL (loopback only)")
	fs.StringVar(&o.Provider, "provider", "generic", "generic (one event per request), sendgrid (batches) or dsn (raw RFC 3464 reports to POST /v1/messages)")
	fs.IntVar(&o.EventsPerRequest, "events", 1, "events per request")
	fs.IntVar(&o.Requests, "requests", 10000, "requests to send (a bound)")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "stop sending new requests after this (a bound)")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "then keep retrying unacknowledged requests for at most this long")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "requests in flight (with -dbwork: every path's, instead of its own)")
	fs.Float64Var(&o.Rate, "rate", 0, "requests per second (0: as fast as they are answered)")
	fs.IntVar(&o.Addresses, "addresses", 100000, "distinct recipient addresses")
	fs.StringVar(&o.RunID, "run-id", "", "prefix of every event id (random when empty)")
	fs.DurationVar(&o.MaxBackoff, "max-backoff", time.Second, "longest wait between retries (Retry-After is capped to it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *initKeys != "" {
		return writeKeys(*initKeys, stdout)
	}
	if *dbwork {
		var err error
		var paths []string
		for _, p := range strings.Split(*dbPaths, ",") {
			if p = strings.TrimSpace(p); p != "" {
				paths = append(paths, p)
			}
		}
		// -concurrency, when given, replaces each path's own.
		conc := 0
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "concurrency" {
				conc = o.Concurrency
				if conc < 1 || conc > dbworkMaxConcurrency {
					err = fmt.Errorf("-concurrency with -dbwork: %d is not between 1 and %d", conc, dbworkMaxConcurrency)
				}
			}
		})
		if err != nil {
			return err
		}
		return runDBWork(ctx, dbworkOptions{bounced: *dbBounced, paths: paths, scale: *dbScale, concurrency: conc,
			verbose: *verbose, asJSON: *asJSON}, stdout, stderr)
	}
	kit, err := readKeys(*keys)
	if err != nil {
		return err
	}
	o.Sign = func(provider string, body []byte) http.Header {
		_, h := kit.Request(provider, body)
		return h
	}
	var res loadgen.Result
	if *checkOnly {
		res = loadgen.Result{RunID: o.RunID, Provider: o.Provider, EventsPerRequest: o.EventsPerRequest}
		for i := range o.Requests {
			res.AckedRequests = append(res.AckedRequests, i)
		}
	} else {
		if res, err = loadgen.Run(ctx, o); err != nil {
			return err
		}
	}
	var check *loadgen.CheckResult
	if *checkDB == "private" {
		// QUIRK(README): a bounced started without a database URL runs its
		// own PostgreSQL on a socket in its data directory.
		if *checkDB, err = pgserver.RunningURL(filepath.Join(cmp.Or(getenv("BOUNCED_DATA_DIR"), config.DataDirDefault), "postgres"), ""); err != nil {
			return fmt.Errorf("-check-database private: %w", err)
		}
	}
	if *checkDB != "" {
		c, err := loadgen.Check(ctx, *checkDB, res.Provider, res.RunID, res.EventsPerRequest, res.AckedRequests)
		if err != nil {
			return err
		}
		check = &c
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Run   loadgen.Result       `json:"run"`
			Check *loadgen.CheckResult `json:"check,omitempty"`
		}{res, check}); err != nil {
			return err
		}
	} else {
		if !*checkOnly {
			fmt.Fprint(stdout, res)
		}
		if check != nil {
			fmt.Fprint(stdout, check)
		}
	}
	if check != nil && !check.OK() {
		return errors.New("events were lost or duplicated")
	}
	if res.GaveUp > 0 {
		return fmt.Errorf("%d requests were never acknowledged", res.GaveUp)
	}
	return nil
}

const (
	genericFile  = "generic-secret"
	sendGridFile = "sendgrid-private.pem"
)

func writeKeys(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, genericFile), []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, sendGridFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	kit := &webhooktest.Kit{Keys: webhook.TestKeys{ECDSA: key}}
	abs, _ := filepath.Abs(filepath.Join(dir, genericFile))
	fmt.Fprintf(stdout, "BOUNCED_WEBHOOK_GENERIC_SECRETS_FILE=%s\nBOUNCED_WEBHOOK_SENDGRID_PUBLIC_KEYS=%s\n", abs, kit.SendGridPublicKey())
	return nil
}

func readKeys(dir string) (*webhooktest.Kit, error) {
	if dir == "" {
		return nil, errors.New("-keys DIR is required (make one with -init-keys DIR)")
	}
	secret, err := os.ReadFile(filepath.Join(dir, genericFile))
	if err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, sendGridFile))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", sendGridFile)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return &webhooktest.Kit{Keys: webhook.TestKeys{Secret: strings.TrimSpace(string(secret)), ECDSA: key}}, nil
}

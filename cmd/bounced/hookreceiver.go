package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bounced/bounced/internal/push"
)

// webhookReceiver runs a receiver of outbound webhooks for trying a
// subscription out: it checks each delivery's Standard Webhooks
// signature as a subscriber must, prints the deliveries that verify
// (their webhook-id, webhook-timestamp, webhook-signature and body, one
// line each) and answers 204, or 401 to what does not verify. It exits
// after --count distinct webhook-ids, or fails after --timeout.
func webhookReceiver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	listen := fset.String("listen", "127.0.0.1:8026", "address to listen on")
	secret := fset.String("secret", "", "the subscription's signing secret (whsec_...)")
	secretFile := fset.String("secret-file", "", "read the secret from this file")
	count := fset.Int("count", 0, "exit after this many distinct deliveries (0: run until stopped)")
	timeout := fset.Duration("timeout", 0, "fail if --count deliveries have not arrived by then (0: no limit)")
	h := help{name: "webhook-receiver", flags: func(fs *flag.FlagSet) {
		fset.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	}, text: "Receives outbound webhooks to try a subscription out: checks each delivery's\nsignature with the secret, prints the deliveries that verify (webhook-id,\nwebhook-timestamp, webhook-signature, body: a line each) and answers 204;\nanswers 401 to what does not verify.\n"}
	if err := fset.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Sprintf("webhook-receiver: unexpected argument %q", fset.Arg(0))}
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("webhook-receiver: %w", err)
		}
		*secret = strings.TrimSpace(string(b))
	}
	if _, err := push.SecretKey(*secret); err != nil {
		return usageError{"webhook-receiver: --secret: " + strings.TrimPrefix(err.Error(), "push: ")}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("webhook-receiver: %w", err)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err == nil {
				err = push.Verify(*secret, r.Header, body, time.Now(), 5*time.Minute)
			}
			if err != nil {
				fmt.Fprintln(stderr, "webhook-receiver: refused a delivery:", strings.TrimPrefix(err.Error(), "push: "))
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			id := r.Header.Get(push.HeaderID)
			if !seen[id] { // a redelivery of a change already printed is answered, not printed
				seen[id] = true
				fmt.Fprintf(stdout, "webhook-id: %s\nwebhook-timestamp: %s\nwebhook-signature: %s\n%s\n",
					id, r.Header.Get(push.HeaderTimestamp), r.Header.Get(push.HeaderSignature), body)
				if *count > 0 && len(seen) == *count {
					close(done)
				}
			}
			w.WriteHeader(http.StatusNoContent)
		})}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var result error
	select {
	case <-done:
	case err := <-errc:
		return fmt.Errorf("webhook-receiver: %w", err)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			mu.Lock()
			result = fmt.Errorf("webhook-receiver: %d of %d deliveries arrived within %v", len(seen), *count, *timeout)
			mu.Unlock()
		}
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return result
}

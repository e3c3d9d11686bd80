package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/config"
)

// certServer serves a certificate under /good/ (slowly, counting
// fetches) and 404 elsewhere.
func certServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	var fetches atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !strings.HasPrefix(r.URL.Path, "/good/") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/good/0" {
			time.Sleep(100 * time.Millisecond) // long enough for the others to arrive
		}
		_, _ = w.Write(certPEM)
	}))
	t.Cleanup(srv.Close)
	return srv, &fetches
}

// TestCertCacheBounded: the SNS certificate cache holds at most
// maxCachedCerts certificates, keeps nothing of failed fetches, and
// fetches a certificate once however many requests want it at once.
func TestCertCacheBounded(t *testing.T) {
	t.Parallel()
	srv, fetches := certServer(t)
	c := newCertCache()
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.get(ctx, srv.Client(), srv.URL+"/good/0"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("50 concurrent requests for one certificate fetched it %d times, want 1", n)
	}
	for i := range 3 * maxCachedCerts {
		if _, err := c.get(ctx, srv.Client(), fmt.Sprintf("%s/good/%d", srv.URL, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", 900)
	for i := range 1000 {
		if _, err := c.get(ctx, srv.Client(), fmt.Sprintf("%s/bad/%d/%s", srv.URL, i, long)); err == nil {
			t.Fatal("a missing certificate was fetched")
		}
	}
	if n := c.entries(); n > maxCachedCerts {
		t.Errorf("the cache holds %d entries after 1000 failures and %d certificates, want at most %d", n, 3*maxCachedCerts, maxCachedCerts)
	}
	// A failure is not remembered: the next request tries again.
	before := fetches.Load()
	_, _ = c.get(ctx, srv.Client(), srv.URL+"/bad/0/"+long)
	if fetches.Load() != before+1 {
		t.Errorf("a failed URL was not fetched again")
	}
}

// TestSigningCertURLLengthCapped: a SigningCertURL longer than any SNS
// uses is refused before it is fetched or kept.
func TestSigningCertURLLengthCapped(t *testing.T) {
	t.Parallel()
	s, err := newSNS(config.ProviderSettings{"topic-arns": {"*"}, "cert-hosts": {"sns.*.amazonaws.com"}}, http.DefaultClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := "https://sns.eu-west-1.amazonaws.com/" + strings.Repeat("a", 2<<20) + ".pem"
	if err := s.checkAWSURL(u); err == nil {
		t.Errorf("checkAWSURL(a %d-byte URL) = nil, want an error", len(u))
	}
	if err := s.checkAWSURL("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"); err != nil {
		t.Errorf("checkAWSURL(a real SNS URL) = %v", err)
	}
}

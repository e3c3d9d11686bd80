package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/bounced/bounced/internal/dbtest"
)

// TestReadmeGenericWebhook runs the README's generic webhook example: the
// secret it configures, the body it signs, the header it sends.
func TestReadmeGenericWebhook(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`BOUNCED_WEBHOOK_GENERIC_SECRETS=(\S+)\nbody='([^']+)'\nsig=\$\(printf '%s' "\$body" \| openssl dgst -sha256 -hmac (\S+) -r`).FindSubmatch(readme)
	if m == nil || !bytes.Equal(m[1], m[3]) {
		t.Fatal("README's generic webhook example changed; update this test with it")
	}
	if !bytes.Contains(readme, []byte(`curl -H "X-Bounced-Signature: sha256=$sig" -H 'Content-Type: application/json'`)) {
		t.Fatal("README's generic webhook curl command changed; update this test with it")
	}
	secret, body := string(m[1]), m[2]
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t), "BOUNCED_WEBHOOK_GENERIC_SECRETS", secret))
	defer stop()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/webhooks/generic", bytes.NewReader(body))
	req.Header.Set("X-Bounced-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST README webhook = %d, want 200", resp.StatusCode)
	}
	if code := getStatus(t, base+"/v1/suppressions/user@example.com"); code != http.StatusOK {
		t.Errorf("GET /v1/suppressions/user@example.com = %d, want 200", code)
	}
	// Unconfigured providers answer 404.
	if code, _ := post(t, base+"/v1/webhooks/sendgrid", []byte("[]")); code != http.StatusNotFound {
		t.Errorf("POST unconfigured sendgrid = %d, want 404", code)
	}
}

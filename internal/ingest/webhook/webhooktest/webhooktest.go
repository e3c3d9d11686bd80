// Package webhooktest signs webhook payloads the way each provider does,
// with keys generated on the spot, for tests, benchmarks and the load
// tool. Nothing here is used by bounced itself. Which providers exist and
// how each signs comes from the webhook package's registry.
package webhooktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest/webhook"
)

// Kit holds one account's credentials for every provider, and for SNS a
// TLS server on 127.0.0.1 that serves the signing certificate and takes
// subscription confirmations.
type Kit struct {
	// NowFunc dates signatures; time.Now when nil.
	NowFunc func() time.Time
	// Keys sign every provider's requests (see webhook.TestKeys).
	Keys webhook.TestKeys

	sns           *httptest.Server
	confirmations atomic.Int64
}

// New generates fresh keys and starts the SNS certificate server; Close
// stops it.
func New() (*Kit, error) {
	k := &Kit{Keys: webhook.TestKeys{Secret: randHex(16)}}
	var err error
	if k.Keys.ECDSA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.Keys.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	certPEM, err := snsCertificate(k.Keys.RSA)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /SimpleNotificationService-test.pem", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(certPEM)
	})
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") != "ConfirmSubscription" {
			http.Error(w, "bad action", http.StatusBadRequest)
			return
		}
		k.confirmations.Add(1)
		_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	k.sns = httptest.NewTLSServer(mux)
	k.Keys.CertURL = k.sns.URL + "/SimpleNotificationService-test.pem"
	return k, nil
}

// Close stops the SNS certificate server.
func (k *Kit) Close() { k.sns.Close() }

// HTTPClient trusts the SNS certificate server's TLS certificate.
func (k *Kit) HTTPClient() *http.Client { return k.sns.Client() }

// TLSCertificatePEM is the SNS server's TLS certificate, for a process
// that must trust it (SSL_CERT_FILE).
func (k *Kit) TLSCertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.sns.Certificate().Raw})
}

// Confirmations counts SNS subscription confirmations received.
func (k *Kit) Confirmations() int64 { return k.confirmations.Load() }

// Config accepts this kit's credentials for every provider.
func (k *Kit) Config() config.Webhooks {
	return config.Webhooks{
		MaxBodyBytes:    config.WebhookMaxBodyBytesDefault,
		TimestampWindow: config.WebhookTimestampWindowDefault,
		Providers:       webhook.TestSettings(k.Keys),
	}
}

// Env is Config as BOUNCED_* environment variables.
func (k *Kit) Env() map[string]string {
	out := map[string]string{}
	for provider, settings := range webhook.TestSettings(k.Keys) {
		for name, values := range settings {
			out[config.WebhookSettingEnv(provider, name)] = strings.Join(values, ",")
		}
	}
	return out
}

// SendGridPublicKey is the verification key as SendGrid shows it: base64
// DER without PEM armour.
func (k *Kit) SendGridPublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.Keys.ECDSA.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// RSAPublicKey is the RSA key as Postal's DNS record gives it.
func (k *Kit) RSAPublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.Keys.RSA.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

func (k *Kit) now() time.Time {
	if k.NowFunc != nil {
		return k.NowFunc()
	}
	return time.Now()
}

// Request turns a provider's payload, as its testdata holds it, into the
// body and headers the provider would send, signed now: for ses the SES
// notification JSON wrapped in a version 2 SNS message, for mailgun its
// event-data in a signed body, for mandrill the form carrying the JSON
// array of events, for the others the body itself.
func (k *Kit) Request(provider string, payload []byte) ([]byte, http.Header) {
	body, h, err := webhook.SignTestRequest(provider, k.Keys, payload, k.now())
	if err != nil {
		panic("webhooktest: " + err.Error())
	}
	return body, h
}

// MailgunBodyWithToken is a Mailgun body carrying eventData signed at ts
// with token.
func (k *Kit) MailgunBodyWithToken(eventData []byte, ts time.Time, token string) []byte {
	return webhook.SignMailgunTest(k.Keys.Secret, eventData, ts, token)
}

// MandrillSignature signs form for webhookURL as Mandrill does.
func (k *Kit) MandrillSignature(webhookURL string, form url.Values) string {
	return webhook.SignMandrillTest(k.Keys.Secret, webhookURL, form)
}

// SNSMessage is an SNS HTTP delivery before it is serialised.
type SNSMessage = webhook.SNSTestMessage

// SNSNotification is a signed SNS Notification carrying message.
func (k *Kit) SNSNotification(message string, version int) []byte {
	m := k.NewSNS("Notification", message)
	k.SignSNS(&m, version)
	return marshal(m)
}

// SNSSubscription is a signed SubscriptionConfirmation whose SubscribeURL
// points at the kit's server.
func (k *Kit) SNSSubscription(version int) []byte {
	return k.SNSSubscriptionTo(webhook.SNSTestTopicARN, version)
}

// SNSSubscriptionTo is SNSSubscription for another topic.
func (k *Kit) SNSSubscriptionTo(topic string, version int) []byte {
	m := k.NewSNS("SubscriptionConfirmation", "You have chosen to subscribe to the topic "+topic+".")
	m.TopicArn = topic
	m.Token = randHex(32)
	m.SubscribeURL = k.sns.URL + "/confirm?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topic) + "&Token=" + m.Token
	k.SignSNS(&m, version)
	return marshal(m)
}

// SNSUnsubscribe is a signed UnsubscribeConfirmation for topic.
func (k *Kit) SNSUnsubscribe(topic string) []byte {
	m := k.NewSNS("UnsubscribeConfirmation", "You have chosen to deactivate subscription.")
	m.TopicArn = topic
	m.Token = randHex(32)
	m.SubscribeURL = k.sns.URL + "/confirm?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topic) + "&Token=" + m.Token
	k.SignSNS(&m, 2)
	return marshal(m)
}

// NewSNS is an unsigned SNS message of type typ.
func (k *Kit) NewSNS(typ, message string) SNSMessage {
	return webhook.NewSNSTestMessage(typ, message, k.Keys.CertURL, k.now())
}

// SignSNS signs m with SignatureVersion version (1: SHA1, 2: SHA256).
func (k *Kit) SignSNS(m *SNSMessage, version int) { webhook.SignSNSTest(m, k.Keys.RSA, version) }

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// snsCertificate is a leaf certificate for key issued by a throwaway CA,
// as SNS's signing certificates are issued by Amazon's.
func snsCertificate(key *rsa.PrivateKey) ([]byte, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bounced test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sns.eu-west-1.amazonaws.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

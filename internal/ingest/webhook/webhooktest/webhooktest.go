// Package webhooktest signs webhook payloads the way each provider does,
// with keys generated on the spot, for tests, benchmarks and the load
// tool. Nothing here is used by bounced itself.
package webhooktest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the providers' own schemes
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bounced/bounced/internal/config"
)

// Kit holds one account's credentials for every provider, and for SNS a
// TLS server on 127.0.0.1 that serves the signing certificate and takes
// subscription confirmations.
type Kit struct {
	// NowFunc dates signatures; time.Now when nil.
	NowFunc func() time.Time

	SendGridKey   *ecdsa.PrivateKey
	PostalKey     *rsa.PrivateKey
	SNSKey        *rsa.PrivateKey
	MailgunKey    string
	MandrillKey   string
	MandrillURL   string
	ResendSecret  string // whsec_...
	GenericSecret string
	User, Pass    string // Basic credentials for Postmark, SparkPost, Mailjet, Brevo
	TopicARN      string

	sns           *httptest.Server
	confirmations atomic.Int64
	serial        atomic.Int64
}

// New generates fresh keys and starts the SNS certificate server; Close
// stops it.
func New() (*Kit, error) {
	k := &Kit{
		MailgunKey:    "key-" + randHex(16),
		MandrillKey:   randHex(11),
		MandrillURL:   "https://bounced.example.net/v1/webhooks/mandrill",
		ResendSecret:  "whsec_" + base64.StdEncoding.EncodeToString([]byte(randHex(12))),
		GenericSecret: randHex(16),
		User:          "hook",
		Pass:          randHex(8),
		TopicARN:      "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
	}
	var err error
	if k.SendGridKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.PostalKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.SNSKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	certPEM, err := snsCertificate(k.SNSKey)
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

// SNSHost is the host:port the SNS certificate server listens on.
func (k *Kit) SNSHost() string { u, _ := url.Parse(k.sns.URL); return u.Host }

// Confirmations counts SNS subscription confirmations received.
func (k *Kit) Confirmations() int64 { return k.confirmations.Load() }

// Config accepts this kit's credentials for every provider.
func (k *Kit) Config() config.Webhooks {
	basic := []string{k.User + ":" + k.Pass}
	return config.Webhooks{
		MaxBodyBytes:       config.WebhookMaxBodyBytesDefault,
		TimestampWindow:    config.WebhookTimestampWindowDefault,
		SESTopicARNs:       []string{k.TopicARN},
		SESCertHosts:       []string{k.SNSHost()},
		SESAutoConfirm:     true,
		SendGridPublicKeys: []string{k.SendGridPublicKey()},
		MailgunSigningKeys: []string{k.MailgunKey},
		PostmarkBasicAuth:  basic,
		SparkPostBasicAuth: basic,
		MailjetBasicAuth:   basic,
		BrevoBasicAuth:     basic,
		MandrillKeys:       []string{k.MandrillKey},
		MandrillURLs:       []string{k.MandrillURL},
		ResendSecrets:      []string{k.ResendSecret},
		PostalPublicKeys:   []string{k.PostalPublicKey()},
		GenericSecrets:     []string{k.GenericSecret},
	}
}

// Env is Config as BOUNCED_* environment variables.
func (k *Kit) Env() map[string]string {
	return map[string]string{
		"BOUNCED_WEBHOOK_SES_TOPIC_ARNS":       k.TopicARN,
		"BOUNCED_WEBHOOK_SES_CERT_HOSTS":       k.SNSHost(),
		"BOUNCED_WEBHOOK_SENDGRID_PUBLIC_KEYS": k.SendGridPublicKey(),
		"BOUNCED_WEBHOOK_MAILGUN_SIGNING_KEYS": k.MailgunKey,
		"BOUNCED_WEBHOOK_POSTMARK_BASIC_AUTH":  k.User + ":" + k.Pass,
		"BOUNCED_WEBHOOK_SPARKPOST_BASIC_AUTH": k.User + ":" + k.Pass,
		"BOUNCED_WEBHOOK_MAILJET_BASIC_AUTH":   k.User + ":" + k.Pass,
		"BOUNCED_WEBHOOK_BREVO_BASIC_AUTH":     k.User + ":" + k.Pass,
		"BOUNCED_WEBHOOK_MANDRILL_KEYS":        k.MandrillKey,
		"BOUNCED_WEBHOOK_MANDRILL_URLS":        k.MandrillURL,
		"BOUNCED_WEBHOOK_RESEND_SECRETS":       k.ResendSecret,
		"BOUNCED_WEBHOOK_POSTAL_PUBLIC_KEYS":   k.PostalPublicKey(),
		"BOUNCED_WEBHOOK_GENERIC_SECRETS":      k.GenericSecret,
	}
}

// SendGridPublicKey is the verification key as SendGrid shows it: base64
// DER without PEM armour.
func (k *Kit) SendGridPublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.SendGridKey.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// PostalPublicKey is the Postal server's key as its DNS record gives it.
func (k *Kit) PostalPublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.PostalKey.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

func (k *Kit) now() time.Time {
	if k.NowFunc != nil {
		return k.NowFunc()
	}
	return time.Now()
}

// Request turns a provider's payload into the body and headers the
// provider would send: for ses the SES notification JSON (wrapped in a
// version 2 SNS message), for mailgun the event-data object, for mandrill
// the JSON array of events, for the others the body itself.
func (k *Kit) Request(provider string, payload []byte) ([]byte, http.Header) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(k.User+":"+k.Pass))
	switch provider {
	case "ses":
		h.Set("Content-Type", "text/plain; charset=UTF-8")
		h.Set("X-Amz-Sns-Message-Type", "Notification")
		return k.SNSNotification(string(payload), 2), h
	case "sendgrid":
		k.SignSendGrid(h, payload, k.now())
		return payload, h
	case "mailgun":
		return k.MailgunBody(payload, k.now()), h
	case "postmark", "sparkpost", "mailjet", "brevo":
		h.Set("Authorization", basic)
		return payload, h
	case "mandrill":
		body := []byte("mandrill_events=" + url.QueryEscape(string(payload)))
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("X-Mandrill-Signature", k.MandrillSignature(k.MandrillURL, url.Values{"mandrill_events": {string(payload)}}))
		return body, h
	case "resend":
		k.SignResend(h, fmt.Sprintf("msg_%s", randHex(12)), payload, k.now())
		return payload, h
	case "postal":
		k.SignPostal(h, payload)
		return payload, h
	case "generic":
		h.Set("X-Bounced-Signature", k.GenericSignature(payload))
		return payload, h
	}
	panic("webhooktest: unknown provider " + provider)
}

// SignSendGrid sets SendGrid's signature headers for body at ts.
func (k *Kit) SignSendGrid(h http.Header, body []byte, ts time.Time) {
	t := strconv.FormatInt(ts.Unix(), 10)
	digest := sha256.Sum256(append([]byte(t), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.SendGridKey, digest[:])
	if err != nil {
		panic(err)
	}
	h.Set("X-Twilio-Email-Event-Webhook-Timestamp", t)
	h.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
}

// MailgunBody wraps eventData with a signature made at ts and a fresh
// token.
func (k *Kit) MailgunBody(eventData []byte, ts time.Time) []byte {
	return k.MailgunBodyWithToken(eventData, ts, randHex(25))
}

// MailgunBodyWithToken is MailgunBody with a given token.
func (k *Kit) MailgunBodyWithToken(eventData []byte, ts time.Time, token string) []byte {
	t := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(k.MailgunKey))
	mac.Write([]byte(t + token))
	body, err := json.Marshal(map[string]any{
		"signature":  map[string]string{"timestamp": t, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": json.RawMessage(eventData),
	})
	if err != nil {
		panic(err)
	}
	return body
}

// MandrillSignature signs form for webhookURL as Mandrill does.
func (k *Kit) MandrillSignature(webhookURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(k.MandrillKey))
	mac.Write([]byte(webhookURL))
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range form[name] {
			mac.Write([]byte(name + v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignResend sets Svix's headers for body with message id at ts.
func (k *Kit) SignResend(h http.Header, id string, body []byte, ts time.Time) {
	key, _ := base64.StdEncoding.DecodeString(k.ResendSecret[len("whsec_"):])
	t := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + t + "."))
	mac.Write(body)
	h.Set("Svix-Id", id)
	h.Set("Svix-Timestamp", t)
	// A rotated-out secret's signature comes first, as during rotation.
	h.Set("Svix-Signature", "v1,"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+" v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// SignPostal sets Postal's signature headers for body.
func (k *Kit) SignPostal(h http.Header, body []byte) {
	d256 := sha256.Sum256(body)
	s256, err := rsa.SignPKCS1v15(rand.Reader, k.PostalKey, crypto.SHA256, d256[:])
	if err != nil {
		panic(err)
	}
	d1 := sha1.Sum(body) //nolint:gosec // Postal's legacy header
	s1, err := rsa.SignPKCS1v15(rand.Reader, k.PostalKey, crypto.SHA1, d1[:])
	if err != nil {
		panic(err)
	}
	h.Set("X-Postal-Signature-256", base64.StdEncoding.EncodeToString(s256))
	h.Set("X-Postal-Signature", base64.StdEncoding.EncodeToString(s1))
}

// GenericSignature is the X-Bounced-Signature value for body.
func (k *Kit) GenericSignature(body []byte) string {
	mac := hmac.New(sha256.New, []byte(k.GenericSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SNSMessage is an SNS HTTP delivery before it is serialised.
type SNSMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token,omitempty"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject,omitempty"`
	Message          string  `json:"Message"`
	SubscribeURL     string  `json:"SubscribeURL,omitempty"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	UnsubscribeURL   string  `json:"UnsubscribeURL,omitempty"`
}

// SNSNotification is a signed SNS Notification carrying message.
func (k *Kit) SNSNotification(message string, version int) []byte {
	m := k.NewSNS("Notification", message)
	k.SignSNS(&m, version)
	return marshal(m)
}

// SNSSubscription is a signed SubscriptionConfirmation whose SubscribeURL
// points at the kit's server.
func (k *Kit) SNSSubscription(version int) []byte {
	m := k.NewSNS("SubscriptionConfirmation", "You have chosen to subscribe to the topic "+k.TopicARN+".")
	m.Token = randHex(32)
	m.SubscribeURL = k.sns.URL + "/confirm?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(k.TopicARN) + "&Token=" + m.Token
	k.SignSNS(&m, version)
	return marshal(m)
}

// NewSNS is an unsigned SNS message of type typ.
func (k *Kit) NewSNS(typ, message string) SNSMessage {
	return SNSMessage{
		Type:      typ,
		MessageID: fmt.Sprintf("%08x-0000-4000-8000-%012x", k.serial.Add(1), time.Now().UnixNano()&0xffffffffffff),
		TopicArn:  k.TopicARN,
		// JSON carries only valid UTF-8: sign what the receiver will read.
		Message:        strings.ToValidUTF8(message, "\uFFFD"),
		Timestamp:      k.now().UTC().Format("2006-01-02T15:04:05.000Z"),
		SigningCertURL: k.sns.URL + "/SimpleNotificationService-test.pem",
		UnsubscribeURL: k.sns.URL + "/unsubscribe",
	}
}

// SignSNS signs m with SignatureVersion version (1: SHA1, 2: SHA256).
func (k *Kit) SignSNS(m *SNSMessage, version int) {
	m.SignatureVersion = strconv.Itoa(version)
	var b bytes.Buffer
	add := func(name, value string) { b.WriteString(name + "\n" + value + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
	} else {
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
	}
	add("Type", m.Type)
	var sig []byte
	var err error
	if version == 1 {
		d := sha1.Sum(b.Bytes()) //nolint:gosec // SignatureVersion 1
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.SNSKey, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256(b.Bytes())
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.SNSKey, crypto.SHA256, d[:])
	}
	if err != nil {
		panic(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

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

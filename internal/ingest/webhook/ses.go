package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is RSA-SHA1 by specification
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// SES is Amazon SES notifications delivered by Amazon SNS.
const SES = "ses"

// SNSTestTopicARN is the topic test notifications are published on.
const SNSTestTopicARN = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"

func init() {
	register(spec{
		name: SES,
		settings: []config.WebhookSetting{
			{Name: "topic-arns", Usage: "SNS topic ARNs accepted on /v1/webhooks/ses (* for any)", Credential: true},
			{Name: "cert-hosts", Usage: "hosts SNS signing certificates may come from (* is one DNS label)", Default: config.SNSCertHostsDefault},
			{Name: "auto-confirm", Usage: "confirm SNS subscriptions by fetching their SubscribeURL", Bool: true, Default: []string{"true"}},
		},
		build: func(b *builder) (provider, error) {
			if len(b.settings.List("topic-arns")) == 0 {
				return nil, nil
			}
			if b.recording && b.subscriptions == nil {
				return nil, errors.New("the recorder cannot keep SNS subscriptions, which confirming each topic once needs")
			}
			s, err := newSNS(b.settings, b.client, b.logger)
			if s != nil {
				s.subscriptions = b.subscriptions
			}
			return s, err
		},
		decodePayload: func(payload []byte, now time.Time) (*decoded, error) {
			return decodeSES("sns-message-id", payload, now)
		},
		testSettings: func(k TestKeys) config.ProviderSettings {
			if k.RSA == nil || k.CertURL == "" {
				return nil
			}
			host := ""
			if u, err := url.Parse(k.CertURL); err == nil {
				host = u.Host
			}
			return config.ProviderSettings{"topic-arns": {SNSTestTopicARN}, "cert-hosts": {host}, "auto-confirm": {"true"}}
		},
		testSign: func(k TestKeys, payload []byte, now time.Time) ([]byte, http.Header) {
			m := NewSNSTestMessage(snsNotification, string(payload), k.CertURL, now)
			SignSNSTest(&m, k.RSA, 2)
			b, err := json.Marshal(m)
			if err != nil {
				panic(err)
			}
			return b, http.Header{"Content-Type": {"text/plain; charset=UTF-8"}, "X-Amz-Sns-Message-Type": {snsNotification}}
		},
	})
}

// SNSTestMessage is an SNS HTTP delivery as tests build it, before it is
// serialised.
type SNSTestMessage struct {
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

var snsTestSerial atomic.Int64

// NewSNSTestMessage is an unsigned SNS message of type typ on
// SNSTestTopicARN, its certificate at certURL, published at now.
func NewSNSTestMessage(typ, message, certURL string, now time.Time) SNSTestMessage {
	return SNSTestMessage{
		Type:      typ,
		MessageID: fmt.Sprintf("%08x-0000-4000-8000-%012x", snsTestSerial.Add(1), time.Now().UnixNano()&0xffffffffffff),
		TopicArn:  SNSTestTopicARN,
		// JSON carries only valid UTF-8: sign what the receiver will read.
		Message:        strings.ToValidUTF8(message, "\uFFFD"),
		Timestamp:      now.UTC().Format("2006-01-02T15:04:05.000Z"),
		SigningCertURL: certURL,
		UnsubscribeURL: strings.TrimSuffix(certURL, path.Base(certURL)) + "unsubscribe",
	}
}

// SignSNSTest signs m with key, SignatureVersion version (1: SHA1, 2:
// SHA256): for tests.
func SignSNSTest(m *SNSTestMessage, key *rsa.PrivateKey, version int) {
	m.SignatureVersion = strconv.Itoa(version)
	var b bytes.Buffer
	add := func(name, value string) { b.WriteString(name + "\n" + value + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == snsNotification {
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
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256(b.Bytes())
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	}
	if err != nil {
		panic(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

// sns receives Amazon SES notifications through Amazon SNS.
type sns struct {
	topics      []string // "*" accepts any
	certHosts   []string // "*" is one DNS label
	autoConfirm bool
	client      *http.Client
	certs       *certCache
	logger      *slog.Logger
	// subscriptions keeps the topics confirmed.
	subscriptions SubscriptionKeeper
}

func newSNS(settings config.ProviderSettings, client *http.Client, logger *slog.Logger) (*sns, error) {
	hosts := settings.List("cert-hosts")
	if len(hosts) == 0 {
		hosts = config.SNSCertHostsDefault
	}
	for _, h := range hosts {
		if strings.Contains(h, "/") {
			return nil, fmt.Errorf("cert host %q: want a host name, optionally with :port", h)
		}
	}
	return &sns{
		topics: settings.List("topic-arns"), certHosts: hosts, autoConfirm: settings.Bool("auto-confirm"), client: client,
		certs: newCertCache(), logger: logger,
	}, nil
}

// snsEnvelope is an SNS HTTP(S) delivery.
type snsEnvelope struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     string  `json:"SubscribeURL"`
}

const (
	snsNotification = "Notification"
	snsSubscribe    = "SubscriptionConfirmation"
	snsUnsubscribe  = "UnsubscribeConfirmation"
)

// stringToSign is what SNS signs: the named fields as "name\nvalue\n", in
// this order, Subject only when the message has one.
func (e *snsEnvelope) stringToSign() []byte {
	var b bytes.Buffer
	field := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	field("Message", e.Message)
	field("MessageId", e.MessageID)
	if e.Type == snsNotification {
		if e.Subject != nil {
			field("Subject", *e.Subject)
		}
		field("Timestamp", e.Timestamp)
		field("TopicArn", e.TopicArn)
	} else {
		field("SubscribeURL", e.SubscribeURL)
		field("Timestamp", e.Timestamp)
		field("Token", e.Token)
		field("TopicArn", e.TopicArn)
	}
	field("Type", e.Type)
	return b.Bytes()
}

// QUIRK(sns): the signed Timestamp is the publish time and SNS retries a
// delivery with the same signed message for as long as its delivery
// policy says, so no timestamp window applies: the signature and the
// certificate's validity are the check, and idempotency makes a replay
// harmless.
func (s *sns) verify(ctx context.Context, req *request) error {
	var e snsEnvelope
	if err := decodeJSON(req.body, &e); err != nil {
		return malformed(SES, "the body is not an SNS message: %v", err)
	}
	switch e.Type {
	case snsNotification, snsSubscribe, snsUnsubscribe:
	default:
		return malformed(SES, "SNS message type %q is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation", e.Type)
	}
	if h := req.header.Get("X-Amz-Sns-Message-Type"); h != "" && h != e.Type {
		return malformed(SES, "x-amz-sns-message-type %q does not match Type %q", h, e.Type)
	}
	if e.MessageID == "" || e.TopicArn == "" || e.Signature == "" || e.SigningCertURL == "" {
		return malformed(SES, "the SNS message lacks MessageId, TopicArn, Signature or SigningCertURL")
	}
	if !slices.Contains(s.topics, "*") && !slices.Contains(s.topics, e.TopicArn) {
		return unauthenticated(SES, reasonTopic, "topic %s is not one this server accepts", e.TopicArn)
	}
	var hash crypto.Hash
	switch e.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return unauthenticated(SES, reasonBadAuth, "SignatureVersion %q is not 1 or 2", e.SignatureVersion)
	}
	if err := s.checkAWSURL(e.SigningCertURL); err != nil {
		return unauthenticated(SES, reasonCertificate, "SigningCertURL: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil {
		return unauthenticated(SES, reasonBadAuth, "the signature is not base64")
	}
	cert, err := s.certs.get(ctx, s.client, e.SigningCertURL)
	if err != nil {
		var bad *badCertError
		if errors.As(err, &bad) {
			return unauthenticated(SES, reasonCertificate, "signing certificate: %v", bad.err)
		}
		return fmt.Errorf("webhook: ses: fetch signing certificate: %w", err)
	}
	if req.now.Before(cert.NotBefore) || req.now.After(cert.NotAfter) {
		return unauthenticated(SES, reasonCertificate, "the signing certificate is not valid now")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return unauthenticated(SES, reasonCertificate, "the signing certificate's key is not RSA")
	}
	// QUIRK(sns): x509.Certificate.CheckSignature refuses SHA-1, which
	// SignatureVersion 1 uses: verify the PKCS #1 v1.5 signature directly.
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum(e.stringToSign()) //nolint:gosec // required by SignatureVersion 1
		digest = d[:]
	} else {
		d := sha256.Sum256(e.stringToSign())
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return unauthenticated(SES, reasonBadAuth, "the SNS signature does not verify")
	}
	req.sns = &e
	return nil
}

// checkAWSURL allows only https URLs on an allow-listed host, so neither
// a forged certificate nor a subscription confirmation can make bounced
// fetch an arbitrary URL.
func (s *sns) checkAWSURL(raw string) error {
	if len(raw) > maxCertURLLen {
		return fmt.Errorf("longer than %d bytes", maxCertURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" || u.User != nil {
		return errors.New("not an https URL")
	}
	for _, pattern := range s.certHosts {
		if hostMatches(pattern, u.Host) {
			return nil
		}
	}
	return fmt.Errorf("host %q is not an allowed SNS host", u.Host)
}

// hostMatches compares a host[:port] with a pattern whose "*" labels
// match exactly one DNS label.
func hostMatches(pattern, host string) bool {
	host = strings.ToLower(host)
	pattern = strings.ToLower(pattern)
	ph, pport, _ := strings.Cut(pattern, ":")
	hh, hport, _ := strings.Cut(host, ":")
	if hport == "443" && pport == "" {
		hport = ""
	}
	if pport != hport {
		return false
	}
	pl, hl := strings.Split(ph, "."), strings.Split(hh, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] == "*" {
			if hl[i] == "" || strings.ContainsFunc(hl[i], func(r rune) bool {
				return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-'

			}) {
				return false
			}
			continue
		}
		if pl[i] != hl[i] {
			return false
		}
	}
	return true
}

func (s *sns) decode(req *request) (*decoded, error) {
	e := req.sns
	if e == nil {
		return nil, errors.New("not verified")
	}
	switch e.Type {
	case snsSubscribe:
		d := newDecoded("subscription_confirmation")
		d.confirmURL, d.topic = e.SubscribeURL, e.TopicArn
		return d, nil
	case snsUnsubscribe:
		d := newDecoded("unsubscribe_confirmation")
		d.topic = e.TopicArn
		return d, nil
	}
	return decodeSES(e.MessageID, []byte(e.Message), req.now)
}

// act confirms a subscription, once per topic: SNS sends the request
// again (and a captured one can be replayed, its signature never
// expires), and the topics confirmed are kept in the database, so a
// request for a topic confirmed before, on this replica or another, is
// stored and answered without fetching SubscribeURL again. An
// unsubscribe confirmation forgets the topic, so subscribing it again is
// confirmed.
func (s *sns) act(ctx context.Context, d *decoded, now time.Time) error {
	switch {
	case d.kind == "unsubscribe_confirmation":
		s.logger.WarnContext(ctx, "SNS topic unsubscribed this endpoint; SES events will stop arriving", "topic", d.topic)
		if err := s.subscriptions.ForgetSubscription(ctx, SES, d.topic); err != nil {
			return fmt.Errorf("webhook: ses: forget subscription: %w", err)
		}
	case d.confirmURL == "":
	case !s.autoConfirm:
		s.logger.WarnContext(ctx, "SNS subscription awaits confirmation; open its SubscribeURL to confirm", "topic", d.topic, "subscribe_url", d.confirmURL)
	default:
		claimed, err := s.subscriptions.ClaimSubscription(ctx, SES, d.topic, now)
		if err != nil {
			return fmt.Errorf("webhook: ses: subscription: %w", err)
		}
		if !claimed {
			// QUIRK(sns): confirmed already (or being confirmed now by
			// another request): fetching SubscribeURL again would only
			// repeat it.
			s.logger.InfoContext(ctx, "SNS subscription request for a topic confirmed before; not confirming again (if you deleted and re-created the subscription, open its SubscribeURL)",
				"topic", d.topic, "subscribe_url", d.confirmURL)
			return nil
		}
		cerr := s.confirm(ctx, d.confirmURL)
		// The claim is settled whatever ctx became: a claim left behind
		// blocks confirming for a minute.
		if err := s.subscriptions.SettleSubscription(context.WithoutCancel(ctx), SES, d.topic, cerr == nil, now); err != nil && cerr == nil {
			return fmt.Errorf("webhook: ses: subscription: %w", err)
		}
		return cerr
	}
	return nil
}

// confirm fetches SubscribeURL, which is how an SNS subscription is
// confirmed.
func (s *sns) confirm(ctx context.Context, raw string) error {
	if err := s.checkAWSURL(raw); err != nil {
		return fmt.Errorf("webhook: ses: SubscribeURL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fmt.Errorf("webhook: ses: SubscribeURL: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: ses: confirm subscription: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: ses: confirm subscription: %s", resp.Status)
	}
	s.logger.InfoContext(ctx, "SNS subscription confirmed")
	return nil
}

// certCache keeps signing certificates by URL: SNS signs every message
// with one of a few certificates, which must not be fetched per request.
// It holds at most maxCachedCerts, keeps nothing of a failed fetch, and
// makes concurrent requests for one URL share one fetch.
type certCache struct {
	mu       sync.Mutex
	byURL    map[string]*x509.Certificate
	fetching singleflight.Group
}

func newCertCache() *certCache { return &certCache{byURL: map[string]*x509.Certificate{}} }

// badCertError is a certificate that was fetched but is not usable.
type badCertError struct{ err error }

func (e *badCertError) Error() string { return e.err.Error() }

const (
	maxCachedCerts = 64
	// maxCertURLLen is far above the length of the URLs SNS signs with
	// (about 100 bytes); longer ones are refused before anything is done.
	maxCertURLLen = 1024
)

// entries counts what the cache holds.
func (c *certCache) entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byURL)
}

func (c *certCache) get(ctx context.Context, client *http.Client, raw string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert := c.byURL[raw]
	c.mu.Unlock()
	if cert != nil {
		return cert, nil
	}
	// The fetch outlives a caller that gives up: the others may still
	// wait for it. fetchCert bounds it in time.
	v, err, _ := c.fetching.Do(raw, func() (any, error) {
		cert, err := fetchCert(context.WithoutCancel(ctx), client, raw)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.byURL) >= maxCachedCerts {
			for u := range c.byURL { // evict one; SNS uses a handful
				delete(c.byURL, u)
				break
			}
		}
		c.byURL[raw] = cert
		return cert, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*x509.Certificate), nil
}

func fetchCert(ctx context.Context, client *http.Client, raw string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", raw, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, &badCertError{errors.New("not a PEM certificate")}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, &badCertError{err}
	}
	return cert, nil
}

// decodeSES reads the SES JSON an SNS notification carries.
func decodeSES(snsID string, msg []byte, now time.Time) (*decoded, error) {
	n, err := parse.ReadSES(msg, snsID, now)
	if err != nil {
		return nil, err
	}
	d := newDecoded("events")
	switch {
	case n.Ignored:
		d.ignore(n.Type)
	case n.Unknown:
		d.unknownType(n.Type)
	default:
		d.add(n.Type, n.Events...)
	}
	return d, nil
}

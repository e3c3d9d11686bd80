package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newKit(t testing.TB) *webhooktest.Kit {
	t.Helper()
	k, err := webhooktest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

type env struct {
	kit *webhooktest.Kit
	rcv *webhook.Receiver
	db  *store.DB
	reg *prometheus.Registry
}

func newEnv(t *testing.T, edit func(*config.Webhooks)) *env {
	t.Helper()
	kit := newKit(t)
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{Registerer: reg})
	g, err := store.NewGroupCommitter(db, store.GroupCommitOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	cfg := kit.Config()
	if edit != nil {
		edit(&cfg)
	}
	rcv, err := webhook.New(cfg, g, webhook.Options{Logger: dbtest.Logger(t), Registerer: reg, HTTPClient: kit.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{kit, rcv, db, reg}
}

func (e *env) receive(provider string, body []byte, h http.Header) (store.Outcome, error) {
	return e.rcv.Receive(context.Background(), provider, h, bytes.NewReader(body))
}

// payload reads a fixture, which Kit.Request signs as its provider does.
func payload(t *testing.T, provider, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", provider, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countEvents(t *testing.T, db *store.DB) int {
	t.Helper()
	evs, _, err := db.ListEvents(context.Background(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestReceiveEveryFixture sends every fixture signed as its provider
// signs it, then sends the identical request again: the first is stored
// with its events, the second changes nothing.
func TestReceiveEveryFixture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, provider := range webhook.Providers() {
		files, _ := filepath.Glob(filepath.Join("testdata", provider, "*"))
		if len(files) == 0 {
			t.Errorf("%s: no fixtures in testdata/%s to sign and send", provider, provider)
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".golden.json") {
				continue
			}
			name := filepath.Base(f)
			t.Run(provider+"/"+name, func(t *testing.T) {
				body, h := e.kit.Request(provider, payload(t, provider, name))
				before := countEvents(t, e.db)
				out, err := e.receive(provider, body, h)
				if err != nil {
					t.Fatalf("Receive: %v", err)
				}
				if !out.Created || out.Message.ParseStatus != store.ParseParsed || out.Message.Source != "webhook" || out.Message.Provider != provider {
					t.Fatalf("Receive = %+v, want a new parsed webhook input", out.Message)
				}
				var sum webhook.Summary
				if err := json.Unmarshal(out.Message.Result, &sum); err != nil {
					t.Fatal(err)
				}
				if got := countEvents(t, e.db) - before; got != out.Recorded || out.Recorded > sum.Events {
					t.Errorf("stored %d events, outcome says %d, summary %d", got, out.Recorded, sum.Events)
				}
				stored, ct, err := e.db.GetMessageBody(context.Background(), out.Message.ID)
				if err != nil || !bytes.Equal(stored, body) || ct == "" {
					t.Errorf("stored raw differs from the request body (%v)", err)
				}
				again, err := e.receive(provider, body, h)
				if err != nil || again.Created || again.Message.ID != out.Message.ID || again.Recorded != 0 {
					t.Errorf("replay = %+v, %v; want the same message, nothing recorded", again, err)
				}
				if got := countEvents(t, e.db) - before; got != out.Recorded {
					t.Errorf("after the replay %d events, want %d", got, out.Recorded)
				}
			})
		}
	}
}

// TestRedeliveredEventsAreRecordedOnce: providers resend events in new
// batches (different bytes); the event ids keep them single.
func TestRedeliveredEventsAreRecordedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	first := []byte(`[{"email":"re@example.com","timestamp":1772359203,"event":"bounce","status":"5.1.1","reason":"550 5.1.1 unknown","type":"bounce","sg_event_id":"redeliver-1"}]`)
	second := []byte(`[{"email":"re@example.com","timestamp":1772359203,"event":"bounce","status":"5.1.1","reason":"550 5.1.1 unknown","type":"bounce","sg_event_id":"redeliver-1"},
		{"email":"new@example.com","timestamp":1772359204,"event":"delivered","sg_event_id":"redeliver-2"}]`)
	for i, b := range [][]byte{first, second} {
		body, h := e.kit.Request(webhook.SendGrid, b)
		out, err := e.receive(webhook.SendGrid, body, h)
		if err != nil || !out.Created || out.Recorded != 1 {
			t.Errorf("batch %d: %+v, %v; want one new event", i, out, err)
		}
	}
	r, err := e.db.GetRecipient(context.Background(), "re@example.com")
	if err != nil || r.HardCount != 1 {
		t.Errorf("recipient = %+v, %v; want one hard bounce", r, err)
	}
}

func TestSNSSignatureVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	msg := payload(t, webhook.SES, "bounce-permanent.json")
	for _, version := range []int{1, 2} {
		body := e.kit.SNSNotification(string(msg), version)
		out, err := e.receive(webhook.SES, body, http.Header{"Content-Type": {"text/plain; charset=UTF-8"}})
		if err != nil || !out.Created {
			t.Errorf("SignatureVersion %d: %+v, %v", version, out, err)
		}
		if out.Message.ContentType != "text/plain" {
			t.Errorf("content type %q, want text/plain", out.Message.ContentType)
		}
	}
	if _, err := e.db.GetSuppression(context.Background(), "gone@example.com", ""); err != nil {
		t.Errorf("bounced recipient not suppressed: %v", err)
	}
	if _, err := e.db.GetSuppression(context.Background(), "still.here@example.com", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a destination that did not bounce: %v, want not suppressed", err)
	}
}

func TestSNSSubscriptionConfirmation(t *testing.T) {
	t.Parallel()
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto-confirm %v", auto), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *config.Webhooks) {
				c.Providers[webhook.SES]["auto-confirm"] = []string{strconv.FormatBool(auto)}
			})
			out, err := e.receive(webhook.SES, e.kit.SNSSubscription(1), http.Header{})
			if err != nil || out.Message.Kind != "subscription_confirmation" {
				t.Fatalf("Receive = %+v, %v", out.Message, err)
			}
			want := int64(0)
			if auto {
				want = 1
			}
			if got := e.kit.Confirmations(); got != want {
				t.Errorf("confirmations = %d, want %d", got, want)
			}
		})
	}
}

// TestSNSConfirmsEachTopicOnce: SNS re-sends a SubscriptionConfirmation
// (and a captured one can be replayed); bounced fetches SubscribeURL once
// per topic, also from another replica or after a restart (another
// receiver on the same database), tries again after a failed confirmation,
// and confirms again once the topic was unsubscribed.
func TestSNSConfirmsEachTopicOnce(t *testing.T) {
	t.Parallel()
	const other = "arn:aws:sns:us-east-1:123456789012:ses-bounces-us"
	e := newEnv(t, func(c *config.Webhooks) {
		c.Providers[webhook.SES]["topic-arns"] = []string{webhook.SNSTestTopicARN, other}
	})
	replica, err := webhook.New(func() config.Webhooks {
		c := e.kit.Config()
		c.Providers[webhook.SES]["topic-arns"] = []string{webhook.SNSTestTopicARN, other}
		return c
	}(), e.db, webhook.Options{Logger: dbtest.Logger(t), HTTPClient: e.kit.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	via := func(r *webhook.Receiver, body []byte) {
		t.Helper()
		if _, err := r.Receive(context.Background(), webhook.SES, http.Header{}, bytes.NewReader(body)); err != nil {
			t.Fatalf("Receive = %v", err)
		}
	}
	want := func(n int64, after string) {
		t.Helper()
		if got := e.kit.Confirmations(); got != n {
			t.Errorf("after %s: %d confirmations, want %d", after, got, n)
		}
	}
	via(e.rcv, e.kit.SNSSubscription(1))
	want(1, "the first request")
	via(e.rcv, e.kit.SNSSubscription(2))
	via(e.rcv, e.kit.SNSSubscription(1))
	want(1, "two re-sent requests")
	via(replica, e.kit.SNSSubscription(2))
	want(1, "a re-sent request to another replica")
	via(replica, e.kit.SNSSubscriptionTo(other, 2))
	want(2, "a request for another topic")
	via(e.rcv, e.kit.SNSUnsubscribe(webhook.SNSTestTopicARN))
	via(replica, e.kit.SNSSubscription(2))
	want(3, "unsubscribing and subscribing again")

	// A confirmation that fails is not remembered: the next request tries.
	const third = "arn:aws:sns:eu-west-1:123456789012:third"
	e3 := newEnv(t, func(c *config.Webhooks) { c.Providers[webhook.SES]["topic-arns"] = []string{third} })
	m := e3.kit.NewSNS("SubscriptionConfirmation", "subscribe")
	m.TopicArn, m.Token = third, "tok"
	m.SubscribeURL = strings.Replace(e3.kit.Keys.CertURL, "/SimpleNotificationService-test.pem", "/confirm?Action=Nothing", 1)
	e3.kit.SignSNS(&m, 2)
	bad, _ := json.Marshal(m)
	if _, err := e3.receive(webhook.SES, bad, http.Header{}); err == nil {
		t.Fatal("Receive of a subscription whose confirmation fails = nil, want an error (SNS retries)")
	}
	if _, err := e3.receive(webhook.SES, e3.kit.SNSSubscriptionTo(third, 2), http.Header{}); err != nil {
		t.Fatal(err)
	}
	if got := e3.kit.Confirmations(); got != 1 {
		t.Errorf("after a failed and a good request: %d confirmations, want 1", got)
	}
}

func TestReceiveRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// old signs with this env's keys, ten minutes ago.
	old := &webhooktest.Kit{NowFunc: func() time.Time { return time.Now().Add(-10 * time.Minute) }, Keys: e.kit.Keys}
	sgBody := payload(t, webhook.SendGrid, "batch.json")
	tamper := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }
	type req struct {
		body []byte
		h    http.Header
	}
	signed := func(provider, file string) req {
		b, h := e.kit.Request(provider, payload(t, provider, file))
		return req{b, h}
	}
	tests := []struct {
		name, provider string
		req            func() req
		reason         string
		auth           bool
	}{
		{"sendgrid tampered body", webhook.SendGrid, func() req { r := signed(webhook.SendGrid, "batch.json"); r.body = tamper(r.body); return r }, "bad_signature", true},
		{"sendgrid no signature", webhook.SendGrid, func() req { return req{sgBody, http.Header{}} }, "missing_credentials", true},
		{"sendgrid expired", webhook.SendGrid, func() req { b, h := old.Request(webhook.SendGrid, sgBody); return req{b, h} }, "expired", true},
		{"sendgrid re-serialised JSON", webhook.SendGrid, func() req {
			r := signed(webhook.SendGrid, "batch-crlf.json")
			r.body = bytes.TrimRight(r.body, "\r\n")
			return r
		}, "bad_signature", true},
		{"mailgun wrong key", webhook.Mailgun, func() req {
			k := &webhooktest.Kit{Keys: webhook.TestKeys{Secret: "key-wrong"}}
			b, h := k.Request(webhook.Mailgun, payload(t, webhook.Mailgun, "delivered.json"))
			return req{b, h}
		}, "bad_signature", true},
		{"mailgun expired", webhook.Mailgun, func() req {
			b, h := old.Request(webhook.Mailgun, payload(t, webhook.Mailgun, "delivered.json"))
			return req{b, h}
		}, "expired", true},
		{"mailgun truncated", webhook.Mailgun, func() req { r := signed(webhook.Mailgun, "delivered.json"); r.body = r.body[:len(r.body)/2]; return r }, "malformed", false},
		{"mailgun no signature", webhook.Mailgun, func() req { return req{[]byte(`{"event-data":{"event":"failed"}}`), http.Header{}} }, "missing_credentials", true},
		{"postmark wrong password", webhook.Postmark, func() req {
			r := signed(webhook.Postmark, "hard-bounce.json")
			r.h.Set("Authorization", "Basic aG9vazp3cm9uZw==")
			return r
		}, "bad_signature", true},
		{"sparkpost no credentials", webhook.SparkPost, func() req { r := signed(webhook.SparkPost, "ping.json"); r.h.Del("Authorization"); return r }, "missing_credentials", true},
		{"mailjet token where basic is configured", webhook.Mailjet, func() req {
			r := signed(webhook.Mailjet, "bounce.json")
			r.h.Set("Authorization", "Bearer "+e.kit.Keys.Secret)
			return r
		}, "bad_signature", true},
		{"brevo tampered basic", webhook.Brevo, func() req { r := signed(webhook.Brevo, "batch.json"); r.h.Set("Authorization", "Basic !!!"); return r }, "bad_signature", true},
		{"mandrill signed for another URL", webhook.Mandrill, func() req {
			r := signed(webhook.Mandrill, "events.json")
			r.h.Set("X-Mandrill-Signature", e.kit.MandrillSignature("https://elsewhere.example/hook", map[string][]string{"mandrill_events": {string(payload(t, webhook.Mandrill, "events.json"))}}))
			return r
		}, "bad_signature", true},
		{"resend expired", webhook.Resend, func() req {
			b, h := old.Request(webhook.Resend, payload(t, webhook.Resend, "bounced.json"))
			return req{b, h}
		}, "expired", true},
		{"resend other id", webhook.Resend, func() req { r := signed(webhook.Resend, "bounced.json"); r.h.Set("Svix-Id", "msg_other"); return r }, "bad_signature", true},
		{"postal bad sha256 with good sha1", webhook.Postal, func() req {
			r := signed(webhook.Postal, "sent.json")
			r.h.Set("X-Postal-Signature-256", r.h.Get("X-Postal-Signature"))
			return r
		}, "bad_signature", true},
		{"generic tampered", webhook.Generic, func() req { r := signed(webhook.Generic, "events.json"); r.body = tamper(r.body); return r }, "bad_signature", true},
		{"generic no prefix", webhook.Generic, func() req {
			r := signed(webhook.Generic, "single.json")
			r.h.Set(webhook.GenericSignatureHeader, strings.TrimPrefix(r.h.Get(webhook.GenericSignatureHeader), "sha256="))
			return r
		}, "bad_signature", true},
		{"ses tampered message", webhook.SES, func() req {
			var m map[string]any
			b, _ := e.kit.Request(webhook.SES, payload(t, webhook.SES, "complaint.json"))
			_ = json.Unmarshal(b, &m)
			m["Message"] = strings.Replace(m["Message"].(string), "angry", "innocent", 1)
			b, _ = json.Marshal(m)
			return req{b, http.Header{}}
		}, "bad_signature", true},
		{"ses unknown topic", webhook.SES, func() req {
			m := e.kit.NewSNS("Notification", "{}")
			m.TopicArn = "arn:aws:sns:eu-west-1:999999999999:someone-else"
			e.kit.SignSNS(&m, 2)
			b, _ := json.Marshal(m)
			return req{b, http.Header{}}
		}, "topic", true},
		{"ses certificate elsewhere", webhook.SES, func() req {
			m := e.kit.NewSNS("Notification", "{}")
			m.SigningCertURL = "https://attacker.example/cert.pem"
			e.kit.SignSNS(&m, 2)
			b, _ := json.Marshal(m)
			return req{b, http.Header{}}
		}, "certificate", true},
		{"ses plain http certificate", webhook.SES, func() req {
			m := e.kit.NewSNS("Notification", "{}")
			m.SigningCertURL = strings.Replace(m.SigningCertURL, "https:", "http:", 1)
			e.kit.SignSNS(&m, 2)
			b, _ := json.Marshal(m)
			return req{b, http.Header{}}
		}, "certificate", true},
		{"ses signature version 3", webhook.SES, func() req {
			m := e.kit.NewSNS("Notification", "{}")
			e.kit.SignSNS(&m, 2)
			m.SignatureVersion = "3"
			b, _ := json.Marshal(m)
			return req{b, http.Header{}}
		}, "bad_signature", true},
		{"ses truncated", webhook.SES, func() req { r := signed(webhook.SES, "delivery.json"); r.body = r.body[:40]; return r }, "malformed", false},
		{"ses type header mismatch", webhook.SES, func() req {
			r := signed(webhook.SES, "delivery.json")
			r.h.Set("X-Amz-Sns-Message-Type", "SubscriptionConfirmation")
			return r
		}, "malformed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			before := countEvents(t, e.db)
			_, err := e.receive(tt.provider, r.body, r.h)
			var rej *webhook.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("Receive = %v, want a RejectError", err)
			}
			if rej.Reason != tt.reason || rej.Unauthenticated() != tt.auth || rej.Detail == "" {
				t.Errorf("RejectError = %+v (unauthenticated %v), want reason %s, unauthenticated %v", rej, rej.Unauthenticated(), tt.reason, tt.auth)
			}
			if countEvents(t, e.db) != before {
				t.Error("a rejected request stored events")
			}
		})
	}
	if got := testutil.ToFloat64(mustVec(t, e.reg, "bounced_webhook_rejected_total", "provider", "ses", "reason", "certificate")); got != 2 {
		t.Errorf("bounced_webhook_rejected_total{ses,certificate} = %v, want 2", got)
	}
}

// mustVec returns the value of the series of a counter family with the
// given label pairs.
func mustVec(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			v := m.GetCounter().GetValue()
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return v })
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return 0 })
}

// TestMailgunTokenReplay: a signature is bound to its token only, so a
// token seen with one body is refused with another, while the
// provider's own retry of the same body is accepted (and a no-op).
func TestMailgunTokenReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	a := e.kit.MailgunBodyWithToken(payload(t, webhook.Mailgun, "delivered.json"), now, "same-token-0123456789")
	b := e.kit.MailgunBodyWithToken(payload(t, webhook.Mailgun, "failed-permanent.json"), now, "same-token-0123456789")
	if _, err := e.receive(webhook.Mailgun, a, http.Header{}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.receive(webhook.Mailgun, a, http.Header{}); err != nil || out.Created {
		t.Errorf("retry of the same request = %+v, %v; want an acknowledged no-op", out, err)
	}
	var rej *webhook.RejectError
	if _, err := e.receive(webhook.Mailgun, b, http.Header{}); !errors.As(err, &rej) || rej.Reason != "replayed" {
		t.Errorf("token reused on another body = %v, want a replayed rejection", err)
	}
}

// TestUndecodablePayloadsAreStored: a payload that passed authentication
// but is not what the provider sends is kept, parse status failed.
func TestUndecodablePayloadsAreStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tt := range []struct{ provider, body string }{
		{webhook.SendGrid, `[{"email":"a@example.com","event":"bounce"`},
		{webhook.SendGrid, `[{"email":5}]`},
		{webhook.Postmark, `{"RecordType":"Bounce","ID":{}}`},
		{webhook.Generic, `{"recipient":"a@example.com","status":"five"}`},
		{webhook.Postal, `not json at all`},
		{webhook.Resend, `{"type":"email.bounced","data":{"to":7}}`},
		{webhook.Mandrill, `mandrill_events=%5B%7B`},
		{webhook.SES, `{"notificationType":"Bounce"}`},
	} {
		t.Run(tt.provider+" "+tt.body, func(t *testing.T) {
			var body []byte
			var h http.Header
			switch tt.provider {
			case webhook.Mandrill:
				body = []byte(tt.body)
				h = http.Header{"X-Mandrill-Signature": {e.kit.MandrillSignature(webhook.MandrillTestURL, mustQuery(t, tt.body))}}
			default:
				body, h = e.kit.Request(tt.provider, []byte(tt.body))
			}
			out, err := e.receive(tt.provider, body, h)
			if err != nil {
				t.Fatalf("Receive = %v, want the payload stored", err)
			}
			if out.Message.ParseStatus != store.ParseFailed || out.Message.ParseError == "" || out.Recorded != 0 {
				t.Errorf("Receive = %+v, want parse status failed with an error", out.Message)
			}
		})
	}
}

func mustQuery(t *testing.T, s string) map[string][]string {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUnknownEventTypesAreCountedAndIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body, h := e.kit.Request(webhook.Generic, []byte(`[{"recipient":"a@example.com","type":"teleport","id":"u1"},{"recipient":"b@example.com","type":"warp","id":"u2"}]`))
	out, err := e.receive(webhook.Generic, body, h)
	if err != nil || !out.Created || out.Recorded != 0 {
		t.Fatalf("Receive = %+v, %v; want stored with no events", out, err)
	}
	var sum webhook.Summary
	_ = json.Unmarshal(out.Message.Result, &sum)
	if sum.Unknown != 2 || sum.Types["teleport"] != 1 {
		t.Errorf("summary = %+v, want 2 unknown", sum)
	}
	if got := testutil.ToFloat64(mustVec(t, e.reg, "bounced_webhook_events_total", "provider", "generic", "type", "unknown")); got != 2 {
		t.Errorf("bounced_webhook_events_total{generic,unknown} = %v, want 2", got)
	}
}

func TestUnconfiguredProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Webhooks) {
		*c = config.Webhooks{Providers: map[string]config.ProviderSettings{webhook.Generic: {"secrets": {"only-generic"}}}}
	})
	if got := e.rcv.Configured(); len(got) != 1 || got[0] != webhook.Generic {
		t.Errorf("Configured() = %v, want [generic]", got)
	}
	_, err := e.receive(webhook.SendGrid, []byte("[]"), http.Header{})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Receive(sendgrid) = %v, want ErrNotFound", err)
	}
}

func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  config.Webhooks
		want string
	}{
		{"sendgrid key not base64", one(webhook.SendGrid, "public-keys", "not a key"), "sendgrid"},
		{"sendgrid key is RSA", one(webhook.SendGrid, "public-keys", newKit(t).RSAPublicKey()), "not an ECDSA key"},
		{"postal key garbage", one(webhook.Postal, "public-keys", "AAAA"), "postal"},
		{"resend secret", one(webhook.Resend, "secrets", "whsec_%%%"), "resend"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.New(tt.cfg, nil, webhook.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// one is a configuration with one setting of one provider.
func one(provider, setting, value string) config.Webhooks {
	return config.Webhooks{Providers: map[string]config.ProviderSettings{provider: {setting: {value}}}}
}

type failingRecorder struct{ err error }

func (f failingRecorder) Record(context.Context, store.Input) (store.Outcome, error) {
	return store.Outcome{}, f.err
}

func (f failingRecorder) ClaimSubscription(context.Context, string, string, time.Time) (bool, error) {
	return false, f.err
}

func (f failingRecorder) SettleSubscription(context.Context, string, string, bool, time.Time) error {
	return f.err
}

func (f failingRecorder) ForgetSubscription(context.Context, string, string) error { return f.err }

func (f failingRecorder) ClaimNonce(context.Context, string, string, [32]byte, time.Time, time.Time) (bool, error) {
	return false, f.err
}

func TestDatabaseOutagePassesThrough(t *testing.T) {
	t.Parallel()
	kit := newKit(t)
	rcv, err := webhook.New(kit.Config(), failingRecorder{fmt.Errorf("%w: connection refused", store.ErrUnavailable)}, webhook.Options{HTTPClient: kit.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	body, h := kit.Request(webhook.Generic, payload(t, webhook.Generic, "single.json"))
	if _, err := rcv.Receive(context.Background(), webhook.Generic, h, bytes.NewReader(body)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Receive = %v, want ErrUnavailable", err)
	}
}

// TestProviderVerdictsOverTime follows addresses through several
// providers' events, as received and stored: Mandrill's send resets no
// soft counter, Mailjet's greylisting never counts toward soft
// suppression, and a later, vaguer hard bounce (Postmark deactivating an
// address, SendGrid dropping it) keeps the reason and status the first
// bounce gave.
func TestProviderVerdictsOverTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	send := func(provider, payload string) {
		t.Helper()
		body, h := e.kit.Request(provider, []byte(payload))
		if out, err := e.receive(provider, body, h); err != nil || out.Message.ParseStatus != store.ParseParsed {
			t.Fatalf("Receive(%s) = %+v, %v", provider, out.Message, err)
		}
	}
	day := time.Now().Add(-72 * time.Hour).UTC().Truncate(24 * time.Hour).Add(10 * time.Hour)
	ts := func(d int) string { return strconv.FormatInt(day.Add(time.Duration(d)*24*time.Hour).Unix(), 10) }

	// Two soft bounces from Mandrill, a day apart, then a send.
	for i := range 2 {
		send(webhook.Mandrill, `[{"event":"soft_bounce","_id":"m`+strconv.Itoa(i)+`","ts":`+ts(i)+`,"msg":{"email":"busy@example.com","bounce_description":"mailbox_full","diag":"452 4.2.2 mailbox full","_id":"m`+strconv.Itoa(i)+`"}}]`)
	}
	send(webhook.Mandrill, `[{"event":"send","_id":"m9","ts":`+ts(2)+`,"msg":{"email":"busy@example.com","_id":"m9"}}]`)
	if r, err := e.db.GetRecipient(ctx, "busy@example.com"); err != nil || r.SoftCount != 2 || r.LastDeliveryAt != nil {
		t.Errorf("after two soft bounces and a send: %+v, %v; want soft_count 2 and no delivery", r, err)
	}

	// Mailjet greylists on three days: delays, never soft failures.
	for i := range 3 {
		send(webhook.Mailjet, `{"event":"bounce","time":`+ts(i)+`,"MessageID":`+strconv.Itoa(100+i)+`,"email":"grey@example.com","hard_bounce":false,"error_related_to":"domain","error":"greylisted","comment":"451 4.7.1 greylisted"}`)
	}
	if r, err := e.db.GetRecipient(ctx, "grey@example.com"); err == nil && r.SoftCount != 0 {
		t.Errorf("after three greylistings soft_count = %d, want 0", r.SoftCount)
	}
	if _, err := e.db.GetSuppression(ctx, "grey@example.com", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("greylisted address suppressed: %v", err)
	}

	// SendGrid's 5.1.1 bounce, then Postmark's deactivation and SendGrid's
	// drop, which say less.
	send(webhook.SendGrid, `[{"email":"gone@example.com","timestamp":`+ts(0)+`,"event":"bounce","type":"bounce","status":"5.1.1","reason":"550 5.1.1 no such user here","sg_event_id":"g1"}]`)
	send(webhook.Postmark, `{"RecordType":"SubscriptionChange","MessageID":"pm-1","ChangedAt":"`+day.Add(24*time.Hour).Format(time.RFC3339)+`","Recipient":"gone@example.com","SuppressSending":true,"SuppressionReason":"HardBounce"}`)
	send(webhook.SendGrid, `[{"email":"gone@example.com","timestamp":`+ts(2)+`,"event":"dropped","reason":"Bounced Address","status":"5.0.0","sg_event_id":"g2"}]`)
	s, err := e.db.GetSuppression(ctx, "gone@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Reason != parse.ReasonUserUnknown || s.Status != "5.1.1" || s.Diagnostic != "550 5.1.1 no such user here" || s.EventCount != 3 {
		t.Errorf("suppression = reason %s, status %q, diagnostic %q, %d events; want user_unknown, 5.1.1, the bounce's words, 3",
			s.Reason, s.Status, s.Diagnostic, s.EventCount)
	}
}

package webhook

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/parse"

	"github.com/bounced/bounced/internal/goldentest"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden.json")

// testNow is after every fixture's events.
var testNow = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// decode decodes a provider's fixture as it arrives after verification
// (see spec.decodePayload).
func decode(provider string, body []byte, now time.Time) (*decoded, error) {
	return registry[provider].decodePayload(body, now)
}

// golden is what a fixture decodes to, as stored in its golden file.
type golden struct {
	Kind    string         `json:"kind"`
	Types   map[string]int `json:"types"`
	Ignored int            `json:"ignored"`
	Unknown int            `json:"unknown"`
	Events  []parse.Event  `json:"events"`
}

func fixtures(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, name := range Providers() {
		files, err := filepath.Glob(filepath.Join("testdata", name, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f, ".golden.json") {
				out[name] = append(out[name], f)
			}
		}
		if len(out[name]) == 0 {
			t.Fatalf("no fixtures for %s", name)
		}
	}
	return out
}

// TestDecodeGolden decodes every fixture and compares the events with its
// golden file; go test ./internal/ingest/webhook -update rewrites them.
func TestDecodeGolden(t *testing.T) {
	t.Parallel()
	for provider, files := range fixtures(t) {
		for _, f := range files {
			t.Run(f, func(t *testing.T) {
				t.Parallel()
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				d, err := decode(provider, body, testNow)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				got, err := json.MarshalIndent(golden{d.kind, d.types, d.ignored, d.unknown, d.events}, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				path := strings.TrimSuffix(f, filepath.Ext(f)) + ".golden.json"
				goldentest.Check(t, path, got, *update)
			})
		}
	}
}

// TestClassification pins the decisions that matter: what suppresses,
// what only counts, what is the sender's problem.
func TestClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, fixture, address string
		typ                        parse.EventType
		class                      parse.Class
		reason                     parse.Reason
	}{
		{SES, "bounce-permanent.json", "gone@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SES, "bounce-permanent.json", "Also.Gone@example.net", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SES, "bounce-transient-5xx.json", "nobody@example.org", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SES, "bounce-transient-5xx.json", "full@example.org", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		// "unable to lookup DNS" under 5.4.4 may be a lookup that failed
		// for now: no proof the domain is gone, so it does not suppress.
		{SES, "bounce-544.json", "user@no-such-domain.example", parse.EventBounce, parse.ClassSoft, parse.ReasonDomainUnknown},
		{SES, "bounce-suppressed.json", "suppressed@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SES, "bounce-sender-auth.json", "ok@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonAuthRequired},
		{SES, "complaint.json", "angry@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{SES, "delivery.json", "happy@example.com", parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered},
		{SES, "event-bounce.json", "event.gone@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SES, "event-delivery-delay.json", "slow@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonNetworkError},
		{SendGrid, "batch.json", "bounce@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SendGrid, "batch.json", "blocked@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonSpamBlocked},
		{SendGrid, "batch.json", "deferred@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonSystemError},
		{SendGrid, "batch.json", "dropped@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SendGrid, "batch.json", "spamreport@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{SendGrid, "batch.json", "group@example.com", parse.EventUnsubscribe, parse.ClassNone, parse.ReasonOther},
		{Mailgun, "failed-permanent.json", "alice@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailgun, "failed-temporary.json", "carol@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonMailboxFull},
		{Mailgun, "suppress-bounce.json", "dave@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailgun, "complained.json", "erin@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{Postmark, "hard-bounce.json", "john@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Postmark, "hard-bounce-no-code.json", "nocode@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Postmark, "soft-bounce.json", "jane@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{Postmark, "spam-complaint.json", "spammy@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{Postmark, "subscription-change.json", "leaver@example.com", parse.EventUnsubscribe, parse.ClassNone, parse.ReasonOther},
		{SparkPost, "batch.json", "invalid@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SparkPost, "batch.json", "full@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{SparkPost, "batch.json", "admin@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{SparkPost, "batch.json", "blocked@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonSpamBlocked},
		{SparkPost, "batch.json", "vague@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonDomainUnknown},
		{SparkPost, "batch.json", "oob@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SparkPost, "batch.json", "later@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonPolicyRejected},
		{Mailjet, "bounce.json", "bounce@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailjet, "grouped.json", "soft@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{Mailjet, "grouped.json", "preblocked@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailjet, "grouped.json", "content@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{Brevo, "hard-bounce.json", "gone@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Brevo, "batch.json", "full@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{Brevo, "batch.json", "blocked@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{Mandrill, "events.json", "example.webhook@mandrillapp.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mandrill, "events.json", "rejected@mandrillapp.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{Resend, "bounced.json", "delivered@resend.dev", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Resend, "bounced-multi.json", "two@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonUserUnknown},
		{Postal, "delivery-failed.json", "test@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Postal, "delayed.json", "slow@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonNetworkError},
		{Postal, "bounced.json", "bounced@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonOther},
		{Resend, "bounced-no-type.json", "old.customer@example.org", parse.EventBounce, parse.ClassHard, parse.ReasonOther},
		{Resend, "bounced-transient.json", "full.box@example.org", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{Resend, "suppressed.json", "listed@example.org", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Resend, "failed.json", "anyone@example.org", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{Resend, "delivery-delayed.json", "slow.server@example.org", parse.EventDelay, parse.ClassSoft, parse.ReasonDelayed},
		{Mailjet, "blocked-user-unknown.json", "no.such.user@example.net", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailjet, "blocked-reasons.json", "someone@no-such-domain.example", parse.EventBounce, parse.ClassHard, parse.ReasonDomainUnknown},
		{Mailjet, "blocked-reasons.json", "reported.us@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{Mailjet, "blocked-reasons.json", "reader@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{Mailjet, "bounce-greylisted.json", "new.contact@greylist.example", parse.EventDelay, parse.ClassSoft, parse.ReasonDelayed},
		{Mandrill, "send.json", "buyer@example.com", parse.EventSent, parse.ClassNone, parse.ReasonOther},
		{Mandrill, "deferral-smtp-events.json", "busy.inbox@example.com", parse.EventDelay, parse.ClassSoft, parse.ReasonMailboxFull},
		{SendGrid, "dropped.json", "bounced.before@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{SendGrid, "dropped.json", "complained.before@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{SendGrid, "dropped.json", "content.check@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{SendGrid, "more.json", "auth.fail@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonAuthFailure},
		{SendGrid, "more.json", "gone.box@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Mailgun, "failed-suppress-complaint.json", "reported.spam@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{Mailgun, "failed-old.json", "gave.up@slow.example", parse.EventBounce, parse.ClassSoft, parse.ReasonExpired},
		{Mailgun, "failed-greylisted.json", "first.time@greylist.example", parse.EventDelay, parse.ClassSoft, parse.ReasonDelayed},
		{Mailgun, "failed-espblock.json", "reader@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{SparkPost, "refusals.json", "listed@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{SparkPost, "refusals.json", "templated@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonPolicyRejected},
		{SparkPost, "refusals.json", "full.later@example.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull},
		{Postmark, "subscription-change-bounce.json", "deactivated@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonOther},
		{Postmark, "subscription-change-complaint.json", "annoyed@example.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint},
		{Brevo, "more.json", "nobody@invalid-address.example", parse.EventBounce, parse.ClassHard, parse.ReasonBadSyntax},
		{Brevo, "more.json", "unsent@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonSystemError},
		{Postal, "delivery-failed-connection.json", "unreachable@refusing.example", parse.EventBounce, parse.ClassSoft, parse.ReasonNetworkError},
		{Generic, "sent.json", "queued@example.com", parse.EventSent, parse.ClassNone, parse.ReasonOther},
		{Generic, "events.json", "user@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown},
		{Generic, "events.json", "sender.side@example.com", parse.EventBounce, parse.ClassSender, parse.ReasonProtocolError},
		{Generic, "single.json", "Single@example.com", parse.EventBounce, parse.ClassHard, parse.ReasonDomainUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.fixture+"/"+tt.address, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", tt.provider, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			d, err := decode(tt.provider, body, testNow)
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			for _, ev := range d.events {
				if ev.Address != tt.address || ev.Type != tt.typ {
					continue
				}
				if ev.Class == tt.class && ev.Reason == tt.reason {
					if ev.ProviderEventID == "" {
						t.Errorf("%s: no provider event id", tt.address)
					}
					return
				}
				seen = append(seen, string(ev.Class)+" "+string(ev.Reason))
			}
			t.Errorf("%s %s: got %v, want %s %s", tt.address, tt.typ, seen, tt.class, tt.reason)
		})
	}
}

// TestProviderDetails pins what the decoders keep besides the verdict:
// the codes and words that explain it.
func TestProviderDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, fixture, address string
		status                     parse.Status
		reply                      string
		diagnostic                 string // a part of it
		rule                       string // of its evidence, if any
	}{
		// Mandrill's deferral has no msg.diag: the last SMTP event's reply.
		{Mandrill, "deferral-smtp-events.json", "busy.inbox@example.com", "4.2.2", "452", "452 4.2.2 The email account that you tried to reach is over quota.", ""},
		// SendGrid's drop keeps its status and reason, marked as SendGrid's.
		{SendGrid, "dropped.json", "bounced.before@example.com", "5.0.0", "", "dropped by SendGrid: Bounced Address (status 5.0.0 is SendGrid's own", "QUIRK(sendgrid): dropped"},
		// Resend's advice is kept to read, not read for a reason.
		{Resend, "bounced-no-type.json", "old.customer@example.org", "", "", "hurts your sender reputation", ""},
		// Mailjet's greylisting keeps the server's reply.
		{Mailjet, "bounce-greylisted.json", "new.contact@greylist.example", "4.7.1", "451", "Greylisted", ""},
		// Mailjet's sent carries the receiving server's reply.
		{Mailjet, "grouped.json", "sent@example.com", "", "", "250 2.0.0 OK", ""},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.fixture, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", tt.provider, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			d, err := decode(tt.provider, body, testNow)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range d.events {
				if ev.Address != tt.address {
					continue
				}
				if ev.Status != tt.status || ev.ReplyCode != tt.reply || !strings.Contains(ev.Diagnostic, tt.diagnostic) {
					t.Errorf("%s: status %q, reply %q, diagnostic %q; want %q, %q, one holding %q",
						tt.address, ev.Status, ev.ReplyCode, ev.Diagnostic, tt.status, tt.reply, tt.diagnostic)
				}
				if rule := ""; tt.rule != "" {
					if ev.Evidence != nil {
						rule = ev.Evidence.Rule
					}
					if rule != tt.rule {
						t.Errorf("%s: evidence rule %q, want %q", tt.address, rule, tt.rule)
					}
				}
				return
			}
			t.Errorf("no event for %s", tt.address)
		})
	}
}

// TestSESRecordsOnlyBouncedRecipients: mail.destination lists a third
// address that did not bounce.
func TestSESRecordsOnlyBouncedRecipients(t *testing.T) {
	t.Parallel()
	body, _ := os.ReadFile("testdata/ses/bounce-permanent.json")
	d, err := decodeSES("id", body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.events) != 2 {
		t.Fatalf("decoded %d events, want 2 (the bounced recipients only)", len(d.events))
	}
	for _, ev := range d.events {
		if strings.Contains(ev.Address, "still.here") {
			t.Errorf("recorded %s, which did not bounce", ev.Address)
		}
	}
}

// TestBigIDsKeepTheirDigits: Postmark's ID and Mailjet's MessageID exceed
// 2^53, where float64 would round them.
func TestBigIDsKeepTheirDigits(t *testing.T) {
	t.Parallel()
	pm, _ := os.ReadFile("testdata/postmark/hard-bounce-no-code.json")
	d, err := decodePostmark(pm, testNow)
	if err != nil || len(d.events) != 1 || d.events[0].ProviderEventID != "9007199254740993" {
		t.Errorf("Postmark ID = %v, %v; want 9007199254740993", d, err)
	}
	mj, _ := os.ReadFile("testdata/mailjet/bounce.json")
	d, err = decodeMailjet(mj, testNow)
	if err != nil || len(d.events) != 1 || !strings.Contains(d.events[0].ProviderEventID, ":13792286917004336:") {
		t.Errorf("Mailjet key = %v, %v; want it to hold 13792286917004336", d, err)
	}
}

// TestHashIDsAreStable: events without provider ids get the same key
// each time they are decoded, and different events different keys.
func TestHashIDsAreStable(t *testing.T) {
	t.Parallel()
	body, _ := os.ReadFile("testdata/brevo/batch.json")
	a, _ := decodeBrevo(body, testNow)
	b, _ := decodeBrevo(body, testNow.Add(time.Hour))
	seen := map[string]bool{}
	for i := range a.events {
		if a.events[i].ProviderEventID != b.events[i].ProviderEventID {
			t.Errorf("event %d: key changed between decodes", i)
		}
		if seen[a.events[i].ProviderEventID] {
			t.Errorf("event %d: key %s shared with another event", i, a.events[i].ProviderEventID)
		}
		seen[a.events[i].ProviderEventID] = true
	}
}

func TestDecodeBadPayloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, provider, body string
	}{
		{"sendgrid truncated", SendGrid, `[{"email":"a@example.com","event":"bounce"`},
		{"sendgrid object not array", SendGrid, `{"email":"a@example.com"}`},
		{"sendgrid wrong type", SendGrid, `[{"email":5,"event":"bounce"}]`},
		{"mailgun truncated", Mailgun, `{"event-data":{"event":"failed"`},
		{"mailgun wrong type", Mailgun, `{"event-data":{"event":"failed","recipient":["a"]}}`},
		{"postmark wrong type", Postmark, `{"RecordType":"Bounce","Email":{}}`},
		{"postmark trailing data", Postmark, `{"RecordType":"Bounce"} {}`},
		{"sparkpost truncated", SparkPost, `[{"msys":{"message_event":{"type":"bounce"`},
		{"sparkpost wrong type", SparkPost, `[{"msys":{"message_event":{"type":7}}}]`},
		{"mailjet wrong type", Mailjet, `{"event":"bounce","email":true}`},
		{"brevo truncated", Brevo, `{"event":"hard_bounce",`},
		{"mandrill not json", Mandrill, `mandrill`},
		{"resend wrong type", Resend, `{"type":"email.bounced","data":{"to":"a@example.com"}}`},
		{"postal wrong type", Postal, `{"event":"MessageSent","payload":[]}`},
		{"generic no recipient", Generic, `{"status":"5.1.1"}`},
		{"generic bad status", Generic, `{"recipient":"a@example.com","status":"banana"}`},
		{"generic bad time", Generic, `{"recipient":"a@example.com","occurred_at":"yesterday"}`},
		{"generic empty array", Generic, `[]`},
		{"ses truncated", SES, `{"notificationType":"Bounce","bounce":{`},
		{"ses bounce without object", SES, `{"notificationType":"Bounce"}`},
		{"ses no type", SES, `{"mail":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d, err := decode(tt.provider, []byte(tt.body), testNow); err == nil {
				t.Errorf("decode(%q) = %+v, want an error", tt.body, d)
			}
		})
	}
}

// FuzzDecode feeds every provider's decoder arbitrary bytes, seeded with
// its fixtures: it must return events or an error, never panic, and every
// event it returns must be storable. The provider is fuzzed too (an index
// into Providers()), so a new provider is fuzzed from its testdata on.
func FuzzDecode(f *testing.F) {
	providers := Providers()
	all := fixtures(f)
	for i, provider := range providers {
		for _, file := range all[provider] {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		provider := providers[int(which)%len(providers)]
		d, err := decode(provider, body, testNow)
		if err != nil {
			return
		}
		for _, ev := range d.events {
			if !ev.Type.Valid() {
				t.Errorf("%s: event type %q", provider, ev.Type)
			}
			switch ev.Class {
			case parse.ClassHard, parse.ClassSoft, parse.ClassSender, parse.ClassComplaint, parse.ClassNone:
			default:
				t.Errorf("%s: event class %q", provider, ev.Class)
			}
			if ev.ProviderEventID == "" {
				t.Errorf("%s: event without an idempotency key: %+v", provider, ev)
			}
		}
	})
}

// BenchmarkDecode decodes every fixture of each provider per operation.
func BenchmarkDecode(b *testing.B) {
	for _, provider := range Providers() {
		var bodies [][]byte
		for _, f := range fixtures(b)[provider] {
			body, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, body)
		}
		b.Run(provider, func(b *testing.B) {
			events := 0
			for b.Loop() {
				for _, body := range bodies {
					d, err := decode(provider, body, testNow)
					if err == nil {
						events += len(d.events) + d.ignored + d.unknown
					}
				}
			}
			b.ReportMetric(float64(events)/float64(b.N), "types/op")
		})
	}
}

package parse

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEvents(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	recent := "Mon, 2 Mar 2026 11:00:00 +0000 (UTC)"
	cases := []struct {
		name     string
		kind     Kind
		r        Recipient
		received time.Time
		typ      EventType
		at       time.Time
	}{
		{"failed", KindBounce, Recipient{Address: "A@Example.COM", Action: ActionFailed, Class: ClassHard, Reason: ReasonUserUnknown, LastAttemptDate: recent},
			received, EventBounce, time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)},
		{"delayed", KindDelay, Recipient{Address: "a@example.com", Action: ActionDelayed, Class: ClassSoft}, received, EventDelay, received},
		{"delivered", KindDelivery, Recipient{Address: "a@example.com", Action: ActionRelayed, Class: ClassNone}, received, EventDelivery, received},
		{"complaint", KindComplaint, Recipient{Address: "a@example.com", Action: ActionFailed, Class: ClassComplaint, Reason: ReasonComplaint}, received, EventComplaint, received},
		{"auth-failure feedback is the sender's", KindComplaint, Recipient{Address: "a@example.com", Action: ActionFailed, Class: ClassSender, Reason: ReasonAuthFailure},
			received, EventBounce, received},
		{"auto reply", KindAutoReply, Recipient{Address: "a@example.com", Action: ActionFailed, Class: ClassNone, Reason: ReasonAutoReply}, received, EventAutoReply, received},
		{"a date a year old is not plausible", KindBounce, Recipient{Address: "a@example.com", Action: ActionFailed, LastAttemptDate: "Sun, 2 Mar 2025 11:00:00 +0000"},
			received, EventBounce, received},
		{"no time of receipt takes the report's date", KindBounce, Recipient{Address: "a@example.com", Action: ActionFailed, LastAttemptDate: "Sun, 2 Mar 2025 11:00:00 +0000"},
			time.Time{}, EventBounce, time.Date(2025, 3, 2, 11, 0, 0, 0, time.UTC)},
		{"nor its absence", KindBounce, Recipient{Address: "a@example.com", Action: ActionFailed}, time.Time{}, EventBounce, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := &Report{Kind: tc.kind, ReportingMTA: "mx.example.org", OriginalMessageID: "<m@example.org>", Recipients: []Recipient{tc.r, {Address: "not an address"}}}
			evs := Events(rep, tc.received)
			if len(evs) != 1 {
				t.Fatalf("Events() = %+v, want one event (the unaddressable recipient dropped)", evs)
			}
			ev := evs[0]
			want, _ := NormalizeAddress(tc.r.Address)
			if ev.Address != want || ev.Type != tc.typ || !ev.OccurredAt.Equal(tc.at) || ev.Class != tc.r.Class ||
				ev.ReportingMTA != "mx.example.org" || ev.OriginalMessageID != "<m@example.org>" {
				t.Errorf("Events() = %+v; want %s for %s at %v", ev, tc.typ, want, tc.at)
			}
		})
	}
}

// TestSESMailedAndPostedAgree: an SES notification yields the same events
// whether SNS posts it to the webhook or mails it.
func TestSESMailedAndPostedAgree(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../ingest/webhook/testdata/ses/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no SES fixtures: %v", err)
	}
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	compared := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			posted, err := ReadSES(msg, "", now)
			if err != nil {
				t.Fatal(err)
			}
			mail := "From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\nContent-Type: text/plain\n\n" + string(msg)
			rep, _ := Parse([]byte(mail))
			mailed := Events(rep, now)
			var want []Event
			for _, ev := range posted.Events {
				if ev.Address, err = NormalizeAddress(ev.Address); err == nil {
					ev.ProviderEventID, ev.OccurredAt = "", now
					want = append(want, ev)
				}
			}
			if len(mailed) != len(want) {
				t.Fatalf("mailed %d events %+v, posted %d %+v", len(mailed), mailed, len(want), want)
			}
			for i := range want {
				m, w := mailed[i], want[i]
				if m.Evidence == nil || w.Evidence == nil || *m.Evidence != *w.Evidence {
					t.Errorf("event %d evidence mailed %+v, posted %+v", i, m.Evidence, w.Evidence)
				}
				m.Evidence, w.Evidence = nil, nil
				if m != w {
					t.Errorf("event %d mailed %+v, posted %+v", i, m, w)
				}
			}
		})
		compared++
	}
	if compared < 10 {
		t.Errorf("compared %d fixtures", compared)
	}
}

// mailDateSeeds returns dates to check quickMailDate with: every date
// field of the corpus and the MTA corpus, and the shapes it must leave
// to mail.ParseDate.
func mailDateSeeds(tb testing.TB) []string {
	tb.Helper()
	seeds := corpusFieldValues(tb, "Date", "Arrival-Date", "Last-Attempt-Date")
	files, _ := filepath.Glob("testdata/mta/eml/*/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(strings.ToLower(name), "date") {
				seeds = append(seeds, strings.TrimSpace(value))
			}
		}
	}
	return append(seeds,
		"Thu, 20 Nov 1997 09:55:06 MDT", "Thu, 20 Nov 1997 09:55:06 MDT (MDT)", "20 Nov 97 09:55 UT",
		"Fri,  9 Dec 2022 01:02:03 +0900 (UTC)", "Fri, 09 Dec 2022 01:02:03 -0000", "9 Dec 2022 01:02 GMT",
		"Mon, 2 Mar 2026 11:00:00 +0000 garbage", "Mon, 2 Mar 2026 11:00:00 +0000 (unclosed", "Mon, 2 Mar 2026 11:00:00 +00",
		"Tue, 1 Jul 2003 10:52:37 +0200\r\n", "Tue, 1 Jul 2003\r\n 10:52:37 +0200", "Tue, 1 Jul 2003 10:52:37 +0200\r",
		"2026-03-02T11:00:00Z", "Mon, 32 Mar 2026 11:00:00 +0000", "Mon 2 Mar 2026 11:00:00 +0000", " Mon, 2 Mar 2026 11:00:00 +0000",
		"(c) Mon, 2 Mar 2026 11:00:00 +0000", "Mon, 2 Mar 2026 11:00:00 EST-5", "TTTTT", "", "0", "Mon, 2 Mar 2026 11:00:00 XYZT (A)")
}

// TestQuickMailDate checks that the quick date reader gives what
// mail.ParseDate gives, or leaves the date to it.
func TestQuickMailDate(t *testing.T) {
	t.Parallel()
	read := 0
	for _, s := range mailDateSeeds(t) {
		if sameAsMailDate(t, s) {
			read++
		}
	}
	if read < 100 {
		t.Errorf("quickMailDate read %d dates, want most of the corpus's", read)
	}
}

func FuzzMailDate(f *testing.F) {
	for _, s := range mailDateSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameAsMailDate(t, s) })
}

// sameAsMailDate fails t when quickMailDate(s) is sure of something
// mail.ParseDate does not say (the same time, or no date), and reports
// whether it read a date.
func sameAsMailDate(t *testing.T, s string) bool {
	t.Helper()
	got, ok, sure := quickMailDate(s)
	if !sure {
		return false
	}
	want, err := mail.ParseDate(s)
	if !ok {
		if err == nil {
			t.Errorf("quickMailDate(%q) reads no date, mail.ParseDate = %v", s, want)
		}
		return false
	}
	_, gotOffset := got.Zone()
	_, wantOffset := want.Zone()
	if err != nil || !got.Equal(want) || got.Format(time.RFC3339Nano) != want.Format(time.RFC3339Nano) || gotOffset != wantOffset || got.Location().String() != want.Location().String() {
		t.Errorf("quickMailDate(%q) = %v, mail.ParseDate = %v, %v", s, got, want, err)
	}
	return true
}

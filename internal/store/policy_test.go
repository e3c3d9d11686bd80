package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// clock is a settable NowFunc.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var base = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func day(d float64) time.Time { return base.Add(time.Duration(d * float64(24*time.Hour))) }

// step is one thing that happens to the address under test.
type step struct {
	typ    parse.EventType
	class  parse.Class
	reason parse.Reason
	at     time.Time
	msgID  string
	scope  string
	reset  bool // an API reset instead of an event
}

func soft(reason parse.Reason, at time.Time) step {
	return step{typ: parse.EventBounce, class: parse.ClassSoft, reason: reason, at: at}
}

func hard(reason parse.Reason, at time.Time) step {
	return step{typ: parse.EventBounce, class: parse.ClassHard, reason: reason, at: at}
}

func of(typ parse.EventType, class parse.Class, reason parse.Reason, at time.Time) step {
	return step{typ: typ, class: class, reason: reason, at: at}
}

func (s step) msg(id string) step   { s.msgID = id; return s }
func (s step) in(scope string) step { s.scope = scope; return s }

func every(n int, f func(i int) step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func join(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func intp(n int) *int     { return &n }
func boolp(b bool) *bool  { return &b }
func days(n int) *float64 { f := float64(n); return &f }

// TestPolicy runs every rule of the suppression policy as a case against
// a real database: the soft window and its edges, one count per day and
// per message, resets by delivery and by the API, what never counts,
// per-reason overrides, expiry under an injected clock, and scopes.
func TestPolicy(t *testing.T) {
	t.Parallel()
	const (
		full     = parse.ReasonMailboxFull
		disabled = parse.ReasonMailboxDisabled
		network  = parse.ReasonNetworkError
		spam     = parse.ReasonSpamBlocked
	)
	delivery := func(at time.Time) step { return of(parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered, at) }
	tests := []struct {
		name   string
		policy func(*store.Policy)
		steps  []step
		// checkAt moves the clock before checking; zero checks a minute
		// after the last step.
		checkAt   time.Time
		scope     string // checked scope
		want      bool
		reason    parse.Reason
		class     parse.Class
		expiresIn *float64 // days after the last counted failure; nil: never
		softCount int
	}{
		{name: "three soft failures in 14 days suppress",
			steps: every(3, func(i int) step { return soft(network, day(float64(i))) }),
			want:  true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "two soft failures do not",
			steps: every(2, func(i int) step { return soft(network, day(float64(i))) }), softCount: 2},
		{name: "window edge: a failure exactly 14 days before has left the window",
			steps: []step{soft(network, day(0)), soft(network, day(7)), soft(network, day(14))}, softCount: 2},
		{name: "window edge: a failure just inside 14 days still counts",
			steps: []step{soft(network, day(0)), soft(network, day(7)), soft(network, day(0).Add(14*24*time.Hour-time.Second))},
			want:  true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "at most one count per day",
			steps: every(5, func(i int) step { return soft(network, day(0).Add(time.Duration(i)*time.Hour)) }), softCount: 1},
		{name: "UTC days: 23:59 and 00:01 are two days",
			steps: []step{soft(network, time.Date(2026, 6, 1, 23, 59, 0, 0, time.UTC)), soft(network, time.Date(2026, 6, 2, 0, 1, 0, 0, time.UTC)),
				soft(network, time.Date(2026, 6, 3, 0, 1, 0, 0, time.UTC))},
			want: true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "at most one count per original message",
			steps: every(4, func(i int) step { return soft(network, day(float64(i))).msg("<m1@example.org>") }), softCount: 1},
		{name: "different messages on different days count",
			steps: every(3, func(i int) step { return soft(network, day(float64(i))).msg(fmt.Sprintf("<m%d@example.org>", i)) }),
			want:  true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "a delivery clears the counter",
			steps: []step{soft(network, day(0)), soft(network, day(1)), delivery(day(2)), soft(network, day(3))}, softCount: 1},
		{name: "a late delivery clears only failures before it",
			steps: []step{soft(network, day(0)), soft(network, day(2)), delivery(day(1)), soft(network, day(3)), soft(network, day(4))},
			want:  true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "an API reset clears the counter",
			steps: []step{soft(network, day(0)), soft(network, day(1)), {reset: true, at: day(1.5)}, soft(network, day(2))}, softCount: 1},
		{name: "delays never count",
			steps: every(5, func(i int) step { return of(parse.EventDelay, parse.ClassSoft, parse.ReasonDelayed, day(float64(i))) })},
		{name: "auto-replies never count",
			steps: every(5, func(i int) step {
				return of(parse.EventAutoReply, parse.ClassNone, parse.ReasonAutoReply, day(float64(i)))
			})},
		{name: "sender-side errors never suppress or count",
			steps: join(every(3, func(i int) step {
				return of(parse.EventBounce, parse.ClassSender, parse.ReasonProtocolError, day(float64(i)))
			}),
				every(3, func(i int) step {
					return of(parse.EventBounce, parse.ClassSender, parse.ReasonAuthRequired, day(float64(3+i)))
				}))},
		{name: "a hard bounce suppresses at once and never expires",
			steps: []step{hard(parse.ReasonUserUnknown, day(0))}, checkAt: day(3650),
			want: true, reason: parse.ReasonUserUnknown, class: parse.ClassHard},
		{name: "a complaint suppresses globally by default",
			steps: []step{of(parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, day(0)).in("list:news")},
			want:  true, reason: parse.ReasonComplaint, class: parse.ClassComplaint},
		{name: "complaint_scope list keeps a complaint on its list",
			policy: func(p *store.Policy) { p.ComplaintScope = store.ComplaintList },
			steps:  []step{of(parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, day(0)).in("list:news")}},
		{name: "complaint_scope list: the list sees it",
			policy: func(p *store.Policy) { p.ComplaintScope = store.ComplaintList },
			steps:  []step{of(parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, day(0)).in("list:news")},
			scope:  "list:news", want: true, reason: parse.ReasonComplaint, class: parse.ClassComplaint},
		{name: "an unsubscribe suppresses its list only",
			steps: []step{of(parse.EventUnsubscribe, parse.ClassNone, parse.ReasonOther, day(0)).in("list:news")}},
		{name: "an unsubscribe: its list sees it",
			steps: []step{of(parse.EventUnsubscribe, parse.ClassNone, parse.ReasonOther, day(0)).in("list:news")},
			scope: "list:news", want: true, reason: store.ReasonUnsubscribe, class: parse.ClassNone},
		{name: "default override: a disabled mailbox suppresses after 2",
			steps: []step{soft(disabled, day(0)), soft(disabled, day(1))},
			want:  true, reason: disabled, class: parse.ClassSoft, expiresIn: days(30), softCount: 2},
		{name: "default override: a full mailbox needs 5, 4 do not",
			steps: every(4, func(i int) step { return soft(full, day(float64(i))) }), softCount: 4},
		{name: "default override: a full mailbox 5 times suppresses",
			steps: every(5, func(i int) step { return soft(full, day(float64(i))) }),
			want:  true, reason: full, class: parse.ClassSoft, expiresIn: days(30), softCount: 5},
		{name: "reasons share the window; the latest failure's threshold applies",
			steps: []step{soft(network, day(0)), soft(disabled, day(1))},
			want:  true, reason: disabled, class: parse.ClassSoft, expiresIn: days(30), softCount: 2},
		{name: "override expiry of a reason",
			policy: func(p *store.Policy) { p.Reasons[spam] = store.ReasonRule{ExpiryDays: intp(7)} },
			steps:  every(3, func(i int) step { return soft(spam, day(float64(i))) }),
			want:   true, reason: spam, class: parse.ClassSoft, expiresIn: days(7), softCount: 3},
		{name: "override suppress false records but never suppresses",
			policy: func(p *store.Policy) { p.Reasons[parse.ReasonHasMoved] = store.ReasonRule{Suppress: boolp(false)} },
			steps:  []step{hard(parse.ReasonHasMoved, day(0))}},
		{name: "override threshold of a hard reason: one is not enough",
			policy: func(p *store.Policy) { p.Reasons[parse.ReasonUserUnknown] = store.ReasonRule{Threshold: intp(2)} },
			steps:  []step{hard(parse.ReasonUserUnknown, day(0))}, softCount: 1},
		{name: "override threshold of a hard reason: two are",
			policy: func(p *store.Policy) { p.Reasons[parse.ReasonUserUnknown] = store.ReasonRule{Threshold: intp(2)} },
			steps:  []step{hard(parse.ReasonUserUnknown, day(0)), hard(parse.ReasonUserUnknown, day(1))},
			want:   true, reason: parse.ReasonUserUnknown, class: parse.ClassHard, softCount: 2},
		{name: "soft thresholds and windows are configurable",
			policy: func(p *store.Policy) { p.SoftThreshold, p.SoftWindowDays = 2, 3 },
			steps:  []step{soft(network, day(0)), soft(network, day(3))}, softCount: 1},
		{name: "a soft suppression still holds the day before it expires",
			steps:   every(3, func(i int) step { return soft(network, day(float64(i))) }),
			checkAt: day(2 + 29), want: true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "a soft suppression stops at its expiry without any cleanup",
			steps:   every(3, func(i int) step { return soft(network, day(float64(i))) }),
			checkAt: day(2 + 30), softCount: 3},
		{name: "an expired entry is suppressed afresh by new failures",
			steps: join(every(3, func(i int) step { return soft(network, day(float64(i))) }),
				every(3, func(i int) step { return soft(network, day(float64(40+i))) })),
			want: true, reason: network, class: parse.ClassSoft, expiresIn: days(30), softCount: 3},
		{name: "hard expiry can be configured",
			policy:  func(p *store.Policy) { p.HardExpiryDays = 10 },
			steps:   []step{hard(parse.ReasonUserUnknown, day(0))},
			checkAt: day(10)},
		{name: "soft failures never downgrade a hard entry",
			steps:   join([]step{hard(parse.ReasonUserUnknown, day(0))}, every(3, func(i int) step { return soft(network, day(float64(1+i))) })),
			checkAt: day(100), want: true, reason: parse.ReasonUserUnknown, class: parse.ClassHard, softCount: 3},
		{name: "a hard bounce makes a soft entry permanent",
			steps:   join(every(3, func(i int) step { return soft(network, day(float64(i))) }), []step{hard(parse.ReasonUserUnknown, day(5))}),
			checkAt: day(100), want: true, reason: parse.ReasonUserUnknown, class: parse.ClassHard, softCount: 3},
		{name: "a tenant's bounce suppresses on the tenant's list",
			steps: []step{hard(parse.ReasonUserUnknown, day(0)).in("tenant:acme/list:news")},
			scope: "tenant:acme/list:other", want: true, reason: parse.ReasonUserUnknown, class: parse.ClassHard},
		{name: "a tenant's bounce is not on the global list",
			steps: []step{hard(parse.ReasonUserUnknown, day(0)).in("tenant:acme/list:news")}},
		{name: "a tenant's bounce is not on another tenant's list",
			steps: []step{hard(parse.ReasonUserUnknown, day(0)).in("tenant:acme")}, scope: "tenant:other"},
		{name: "a global bounce is seen from every tenant",
			steps: []step{hard(parse.ReasonUserUnknown, day(0))}, scope: "tenant:acme/list:news",
			want: true, reason: parse.ReasonUserUnknown, class: parse.ClassHard},
		{name: "soft windows are counted per tenant",
			steps: []step{soft(network, day(0)).in("tenant:a"), soft(network, day(1)).in("tenant:b"), soft(network, day(2))}, softCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := &clock{t: base}
			db := dbtest.Open(t, store.Options{NowFunc: clk.Now})
			if tt.policy != nil {
				p := store.DefaultPolicy()
				tt.policy(&p)
				if _, err := db.PutPolicy(ctx, p, "test"); err != nil {
					t.Fatal(err)
				}
			}
			const addr = "rcpt@example.com"
			var last time.Time
			for i, s := range tt.steps {
				clk.Set(s.at.Add(time.Minute))
				last = s.at
				if s.reset {
					if _, err := db.ResetRecipient(ctx, "", addr, "ops", "fixed"); err != nil {
						t.Fatal(err)
					}
					continue
				}
				ev := parse.Event{Address: addr, Type: s.typ, Class: s.class, Reason: s.reason, OccurredAt: s.at,
					OriginalMessageID: s.msgID}
				in := input(fmt.Sprintf("%s-%d", tt.name, i), ev)
				in.Scope = s.scope
				if _, err := db.Record(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.checkAt.IsZero() {
				clk.Set(tt.checkAt)
			}
			got, err := db.GetSuppression(ctx, addr, tt.scope)
			if (err == nil) != tt.want {
				t.Fatalf("GetSuppression(%q) = %+v, %v; want suppressed %v", tt.scope, got, err, tt.want)
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetSuppression error %v, want ErrNotFound", err)
			}
			if tt.want {
				if got.Reason != tt.reason || got.Class != tt.class {
					t.Errorf("entry reason %s class %s, want %s %s", got.Reason, got.Class, tt.reason, tt.class)
				}
				switch {
				case tt.expiresIn == nil && got.ExpiresAt != nil:
					t.Errorf("entry expires at %v, want never", got.ExpiresAt)
				case tt.expiresIn != nil && (got.ExpiresAt == nil || !got.ExpiresAt.Equal(last.Add(time.Duration(*tt.expiresIn*24)*time.Hour))):
					t.Errorf("entry expires at %v, want %g days after %v", got.ExpiresAt, *tt.expiresIn, last)
				}
			}
			tenant := store.TenantOf(tt.steps[len(tt.steps)-1].scope)
			if r, err := db.GetTenantRecipient(ctx, tenant, addr); err != nil {
				t.Errorf("GetTenantRecipient() = %v", err)
			} else if r.SoftCount != tt.softCount {
				t.Errorf("soft_count = %d, want %d", r.SoftCount, tt.softCount)
			}
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	tests := []struct {
		name  string
		edit  func(*store.Policy)
		field string
	}{
		{"threshold too high", func(p *store.Policy) { p.SoftThreshold = 101 }, "soft_threshold"},
		{"negative expiry", func(p *store.Policy) { p.SoftExpiryDays = -1 }, "soft_expiry_days"},
		{"unknown complaint scope", func(p *store.Policy) { p.ComplaintScope = "everywhere" }, "complaint_scope"},
		{"sender reasons cannot be overridden", func(p *store.Policy) { p.Reasons[parse.ReasonProtocolError] = store.ReasonRule{Threshold: intp(1)} }, "reasons.protocol_error"},
		{"delays cannot be overridden", func(p *store.Policy) { p.Reasons[parse.ReasonDelayed] = store.ReasonRule{Threshold: intp(1)} }, "reasons.delayed"},
		{"unknown reason", func(p *store.Policy) { p.Reasons["bogus"] = store.ReasonRule{} }, "reasons.bogus"},
		{"zero override threshold", func(p *store.Policy) { p.Reasons[parse.ReasonMailboxFull] = store.ReasonRule{Threshold: intp(0)} }, "reasons.mailbox_full.threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := store.DefaultPolicy()
			tt.edit(&p)
			_, err := db.PutPolicy(ctx, p, "test")
			var perr *store.PolicyError
			if !errors.As(err, &perr) || perr.Field != tt.field {
				t.Errorf("PutPolicy() = %v, want a PolicyError on %s", err, tt.field)
			}
		})
	}
	// Versions guard against lost updates; zero fields take defaults.
	got, err := db.PutPolicy(ctx, store.Policy{SoftThreshold: 4}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.SoftThreshold != 4 || got.SoftWindowDays != store.SoftWindowDaysDefault || got.UpdatedBy != "alice" {
		t.Errorf("PutPolicy() = %+v, want version 1, threshold 4, default window, by alice", got)
	}
	stale := got
	stale.Version = 7
	if _, err := db.PutPolicy(ctx, stale, "bob"); !errors.Is(err, store.ErrVersionMismatch) {
		t.Errorf("PutPolicy(stale version) = %v, want ErrVersionMismatch", err)
	}
	got.SoftThreshold = 5
	if again, err := db.PutPolicy(ctx, got, "bob"); err != nil || again.Version != 2 {
		t.Errorf("PutPolicy(current version) = %+v, %v, want version 2", again, err)
	}
	// Version 0 is the defaults never stored, not "any version".
	if _, err := db.PutPolicy(ctx, store.Policy{SoftThreshold: 6}, "carol"); !errors.Is(err, store.ErrVersionMismatch) {
		t.Errorf("PutPolicy(version 0 over version 2) = %v, want ErrVersionMismatch", err)
	}
}

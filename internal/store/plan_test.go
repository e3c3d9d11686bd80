package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// These tests reach the planning of a batch and the folding of stats
// without a database.

func plannedInput(raw, scope string, evs ...parse.Event) *prepared {
	p, err := prepare(Input{Source: "webhook", Provider: "p", Raw: []byte(raw), Status: ParseParsed, Events: evs, Scope: scope},
		time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	return p
}

func ev(addr string, typ parse.EventType, class parse.Class) parse.Event {
	return parse.Event{Address: addr, Type: typ, Class: class, Reason: parse.ReasonOther}
}

func TestPlanBatch(t *testing.T) {
	t.Parallel()
	pol := DefaultPolicy()
	ps := []*prepared{
		plannedInput("one", "", ev("B@example.com", parse.EventBounce, parse.ClassSoft), ev("a@example.com", parse.EventDelivery, parse.ClassNone)),
		plannedInput("two", "not a scope!", ev("b@example.com", parse.EventBounce, parse.ClassHard), ev("nobody", parse.EventBounce, parse.ClassHard)),
		plannedInput("one", "", ev("c@example.com", parse.EventBounce, parse.ClassHard)), // the same bytes: a replay
		plannedInput("three", "tenant:acme", ev("b@example.com", parse.EventComplaint, parse.ClassComplaint)),
	}
	plan := planBatch(ps, &pol)
	if plan.nRaw != 3 || !plan.writer[0] || !plan.writer[1] || plan.writer[2] || !plan.writer[3] {
		t.Fatalf("writers %v (%d), want every input but the repeated bytes", plan.writer, plan.nRaw)
	}
	var got []string
	for _, pe := range plan.events {
		got = append(got, fmt.Sprintf("%d %s %s layer %d", pe.input, pe.ev.Address, pe.scope, pe.layer))
	}
	want := []string{
		"0 B@example.com global layer 0", "0 a@example.com global layer 0",
		"1 b@example.com global layer 1", // the unusable address is dropped, the bad scope is global
		"3 b@example.com tenant:acme layer 2",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("planned events\n%q\nwant\n%q", got, want)
	}
	if len(plan.layers) != 3 || plan.layers[0][0].key != "a@example.com" {
		t.Errorf("layers %v: want 3, each in key order", plan.layers)
	}
	for _, pe := range plan.events {
		if pe.ev.OccurredAt.IsZero() {
			t.Errorf("%s: no time; want the time of receipt", pe.ev.Address)
		}
	}
	plan.assign([]int64{30, 10, 20}, []int64{104, 101, 103, 102})
	if plan.rawID[0] != 10 || plan.rawID[1] != 20 || plan.rawID[2] != 0 || plan.rawID[3] != 30 {
		t.Errorf("raw ids %v, want the sorted ids in input order, none for the replay", plan.rawID)
	}
	if plan.events[2].id != 103 || plan.events[2].rawID != 20 {
		t.Errorf("event 2 = id %d raw %d, want 103, 20", plan.events[2].id, plan.events[2].rawID)
	}
	// The soft bounce counts towards the threshold and does not suppress
	// at one; the hard bounce suppresses on the global list, the
	// complaint on the tenant's root list.
	soft := map[int64]int{101: 1, 102: 0, 103: 0, 104: 0}
	var entries []string
	for _, l := range plan.layers {
		for _, e := range plan.entries(l, soft) {
			entries = append(entries, e.Scope+" "+e.Address)
		}
	}
	if fmt.Sprint(entries) != "[global b@example.com tenant:acme b@example.com]" {
		t.Errorf("entries %v", entries)
	}
	recs := plan.results(answers{created: map[int64]bool{10: true, 20: true, 30: true}, isNew: map[int64]bool{101: true, 102: true, 103: true},
		added: map[int64]bool{103: true}})
	if !recs[0].out.Created || recs[0].out.Recorded != 2 || recs[1].out.Recorded != 1 || recs[1].out.SuppressionsAdded != 1 ||
		recs[2].out.Created || recs[3].out.Recorded != 0 || len(recs[3].out.Message.EventIDs) != 0 {
		t.Errorf("results %+v", recs)
	}
}

func TestFoldStats(t *testing.T) {
	t.Parallel()
	h0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h1 := h0.Add(time.Hour)
	counted := []StatsRow{
		{BucketStart: h0, Key: "a.example", Delivered: 90, Hard: 5, Soft: 5},
		{BucketStart: h0, Key: "b.example", Delivered: 10, Complaints: 1},
		{BucketStart: h0, Key: "c.example", Delivered: 1},
		{BucketStart: h1, Key: "c.example", Delivered: 3, Hard: 1},
	}
	q := StatsQuery{Bucket: BucketHour, GroupBy: GroupDomain, Groups: 2}
	got := foldStats(q, counted, []sentVolume{{h0, "a.example", 200}, {h1, "d.example", 7}})
	// c.example and d.example fold into (other); in its 11:00 row the
	// volume d.example reported stands for the whole group.
	want := []string{
		"10:00 (other) sent 1 observed bounce 0",
		"10:00 a.example sent 200 reported bounce 0.05",
		"10:00 b.example sent 10 observed bounce 0",
		"11:00 (other) sent 7 reported bounce 0.14285714285714285",
	}
	var lines []string
	for _, r := range got {
		lines = append(lines, fmt.Sprintf("%s %s sent %d %s bounce %s", r.BucketStart.Format("15:04"), r.Key, r.Sent, r.SentBasis, rateString(r.BounceRate)))
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("foldStats by domain, 2 groups =\n%s\nwant\n%s", lines, want)
	}
	// By reason the volume is the bucket's total, reported when there is any.
	q.GroupBy, q.Groups = GroupReason, 20
	got = foldStats(q, []StatsRow{{BucketStart: h0, Key: "user_unknown", Hard: 2}, {BucketStart: h0, Key: "delivered", Delivered: 8}},
		[]sentVolume{{h0, "", 40}})
	if len(got) != 2 || got[0].Sent != 40 || got[0].SentBasis != SentReported || rateString(got[1].BounceRate) != "0.05" {
		t.Errorf("foldStats by reason = %+v", got)
	}
}

func TestBodyDeflate(t *testing.T) {
	t.Parallel()
	report := []byte(strings.Repeat("Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n", 40))
	cases := []struct {
		name     string
		raw      []byte
		deflated bool
	}{
		{"small: kept as is", []byte("short"), false},
		{"text report: compressed", report, true},
		{"random bytes: kept as is", randomBytes(4096), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, size := deflateBody(tc.raw)
			if (size >= 0) != tc.deflated {
				t.Fatalf("deflateBody(%d bytes) = %d bytes, size %d; want deflated %v", len(tc.raw), len(body), size, tc.deflated)
			}
			var sp *int32
			if size >= 0 {
				n := int32(size)
				sp = &n
			}
			back, err := inflateBody(body, sp)
			if err != nil || !bytes.Equal(back, tc.raw) {
				t.Errorf("inflateBody(deflateBody(x)) = %d bytes, %v; want x", len(back), err)
			}
		})
	}
	// A stored body that does not inflate to its size is an error, not
	// bytes someone might take for the input.
	body, size := deflateBody(report)
	short := int32(size - 1)
	if _, err := inflateBody(body, &short); !errors.Is(err, errBadBody) {
		t.Errorf("inflateBody with a wrong size = %v, want errBadBody", err)
	}
	if _, err := inflateBody([]byte("not deflate"), &short); !errors.Is(err, errBadBody) {
		t.Errorf("inflateBody of garbage = %v, want errBadBody", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return b
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

func manual(email, scope string) store.NewSuppression {
	return store.NewSuppression{Email: email, Scope: scope, Reason: store.ReasonManual, Note: "by hand"}
}

func TestAddSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	res, err := db.AddSuppressions(ctx, []store.NewSuppression{
		manual("a@example.com", ""), manual("b@example.com", "list:news"), manual("A@example.com", ""),
	}, "ops-key", "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].Added || !res[1].Added || !res[2].Added || res[0].Suppression.ID != res[2].Suppression.ID {
		t.Fatalf("AddSuppressions() = %+v, want 3 results, the duplicate sharing the first's entry", res)
	}
	if s := res[0].Suppression; s.Reason != store.ReasonManual || s.CreatedBy != "ops-key" || s.Note != "by hand" || s.Class != parse.ClassNone {
		t.Errorf("entry = %+v, want manual by ops-key with the note", s)
	}
	again, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("a@example.com", "")}, "other", "api")
	if err != nil || again[0].Added || again[0].Suppression.CreatedBy != "ops-key" {
		t.Errorf("adding again = %+v, %v, want not added and the entry unchanged", again, err)
	}
	evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "a@example.com", Type: parse.EventSuppressionAdded})
	if len(evs) != 1 || evs[0].Actor != "ops-key" || evs[0].Note != "by hand" {
		t.Errorf("suppression_added events = %+v, want one by ops-key", evs)
	}
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{{Email: "x@example.com", Reason: parse.ReasonUserUnknown}}, "k", "api"); err == nil {
		t.Error("AddSuppressions() with a bounce reason succeeded, want an error")
	}
}

// TestAddSameAddressConcurrently: two callers adding the same address at
// once make one entry; exactly one of them is told it added it.
func TestAddSameAddressConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	for round := range 5 {
		addr := fmt.Sprintf("race%d@example.com", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		added := 0
		for range 4 {
			wg.Go(func() {
				res, err := db.AddSuppressions(ctx, []store.NewSuppression{manual(addr, "")}, "k", "api")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if res[0].Added {
					added++
				}
			})
		}
		wg.Wait()
		n, err := db.CountSuppressions(ctx, store.SuppressionFilter{EmailPrefix: addr})
		if added != 1 || n != 1 || err != nil {
			t.Errorf("4 concurrent adds of %s: %d added, %d entries (%v), want 1 and 1", addr, added, n, err)
		}
	}
}

func TestCheckSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	db := dbtest.Open(t, store.Options{NowFunc: clk.Now})
	exp := clk.Now().Add(time.Hour)
	items := []store.NewSuppression{manual("g@example.com", ""), manual("l@example.com", "list:a"), manual("t@example.com", "tenant:acme"),
		manual("both@example.com", ""), manual("both@example.com", "list:a"),
		{Email: "exp@example.com", Reason: store.ReasonManual, ExpiresAt: &exp}}
	if _, err := db.AddSuppressions(ctx, items, "k", "api"); err != nil {
		t.Fatal(err)
	}
	emails := []string{"g@example.com", "l@example.com", "t@example.com", "both@example.com", "exp@example.com", "none@example.com"}
	tests := []struct {
		scope string
		want  map[string]string // address -> scope of the entry reported
	}{
		{"", map[string]string{"g@example.com": "global", "both@example.com": "global", "exp@example.com": "global"}},
		{"list:a", map[string]string{"g@example.com": "global", "l@example.com": "list:a", "both@example.com": "list:a", "exp@example.com": "global"}},
		{"tenant:acme/list:a", map[string]string{"g@example.com": "global", "t@example.com": "tenant:acme", "both@example.com": "global", "exp@example.com": "global"}},
	}
	for _, tt := range tests {
		got, err := db.CheckSuppressions(ctx, emails, tt.scope)
		if err != nil {
			t.Fatal(err)
		}
		gotScopes := map[string]string{}
		for k, s := range got {
			gotScopes[k] = s.Scope
		}
		if fmt.Sprint(gotScopes) != fmt.Sprint(tt.want) {
			t.Errorf("CheckSuppressions(scope %q) = %v, want %v", tt.scope, gotScopes, tt.want)
		}
		for addr, scope := range tt.want {
			single, err := db.GetSuppression(ctx, addr, tt.scope)
			if err != nil || single.Scope != scope {
				t.Errorf("GetSuppression(%s, %q) = %s, %v; want the %s entry", addr, tt.scope, single.Scope, err, scope)
			}
		}
	}
	clk.Set(exp)
	if got, _ := db.CheckSuppressions(ctx, []string{"exp@example.com"}, ""); len(got) != 0 {
		t.Errorf("an entry at its expiry is still reported: %v", got)
	}
}

func TestListSuppressionsFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	at := time.Now()
	for i, addr := range []string{"ann@a.example", "bob@b.example", "bea@b.example"} {
		ev := bounce(addr, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", at)
		if i == 1 {
			ev = parse.Event{Address: addr, Type: parse.EventComplaint, Class: parse.ClassComplaint, Reason: parse.ReasonComplaint, OccurredAt: at}
		}
		if _, err := db.Record(ctx, input("filters-"+addr, ev)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("carl@c.example", "list:x"), manual("dan@c.example", "tenant:acme/list:x")}, "k", "api"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    store.SuppressionFilter
		want string
	}{
		{"all, newest first", store.SuppressionFilter{}, "dan carl bea bob ann"},
		{"email order", store.SuppressionFilter{Sort: store.SortEmail}, "ann bea bob carl dan"},
		{"email order descending", store.SuppressionFilter{Sort: store.SortEmailDesc}, "dan carl bob bea ann"},
		{"oldest first", store.SuppressionFilter{Sort: store.SortCreated}, "ann bob bea carl dan"},
		{"scope", store.SuppressionFilter{Scope: "list:x"}, "carl"},
		{"reason", store.SuppressionFilter{Reason: parse.ReasonUserUnknown}, "bea ann"},
		{"class", store.SuppressionFilter{Class: parse.ClassComplaint}, "bob"},
		{"source", store.SuppressionFilter{Source: "api"}, "dan carl"},
		{"domain", store.SuppressionFilter{Domain: "B.example"}, "bea bob"},
		{"prefix", store.SuppressionFilter{EmailPrefix: "B"}, "bea bob"},
		{"tenant", store.SuppressionFilter{Tenant: "acme"}, "dan"},
		{"no tenant", store.SuppressionFilter{OnlyTenant: true}, "carl bea bob ann"},
		{"created since", store.SuppressionFilter{Since: time.Now().Add(time.Hour)}, ""},
		{"created until", store.SuppressionFilter{Until: time.Now().Add(time.Hour)}, "dan carl bea bob ann"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			// Page one entry at a time to exercise every cursor.
			f := tt.f
			f.Limit = 1
			for {
				page, next, err := db.ListSuppressions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range page {
					got = append(got, strings.Split(s.Email, "@")[0])
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("ListSuppressions(%+v) = %q, want %q", tt.f, strings.Join(got, " "), tt.want)
			}
			n, err := db.CountSuppressions(ctx, tt.f)
			if err != nil || n != len(got) {
				t.Errorf("CountSuppressions() = %d, %v, want %d", n, err, len(got))
			}
		})
	}
	// A cursor of one order is refused in another.
	_, next, _ := db.ListSuppressions(ctx, store.SuppressionFilter{Limit: 1})
	if _, _, err := db.ListSuppressions(ctx, store.SuppressionFilter{Sort: store.SortEmail, Cursor: next}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a created cursor in email order = %v, want ErrBadCursor", err)
	}
}

// TestPagingUnderConcurrentInserts pages through the list in every order
// while another goroutine keeps adding: each entry present at the start
// is seen exactly once.
func TestPagingUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	var initial []store.NewSuppression
	for i := range 60 {
		initial = append(initial, manual(fmt.Sprintf("p%03d@example.com", i), ""))
	}
	if _, err := db.AddSuppressions(ctx, initial, "k", "api"); err != nil {
		t.Fatal(err)
	}
	for _, order := range []store.SuppressionSort{store.SortCreatedDesc, store.SortCreated, store.SortEmail, store.SortEmailDesc} {
		t.Run(string(order), func(t *testing.T) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					addr := fmt.Sprintf("new-%s-%d@example.com", strings.TrimPrefix(string(order), "-"), i)
					if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual(addr, "")}, "k", "api"); err != nil {
						t.Error(err)
						return
					}
				}
			})
			seen := map[string]int{}
			f := store.SuppressionFilter{Sort: order, Limit: 7}
			for {
				page, next, err := db.ListSuppressions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range page {
					seen[s.Email]++
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			close(stop)
			wg.Wait()
			for _, it := range initial {
				if seen[it.Email] != 1 {
					t.Errorf("%s seen %d times, want once", it.Email, seen[it.Email])
				}
			}
			for e, n := range seen {
				if n > 1 {
					t.Errorf("%s seen %d times", e, n)
				}
			}
		})
	}
}

func TestDeleteSuppressionsByFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	var items []store.NewSuppression
	for i := range 5 {
		items = append(items, manual(fmt.Sprintf("d%d@old.example", i), ""), manual(fmt.Sprintf("d%d@keep.example", i), ""))
	}
	if _, err := db.AddSuppressions(ctx, items, "k", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteSuppressions(ctx, store.SuppressionFilter{}, "k", ""); !errors.Is(err, store.ErrBadFilter) {
		t.Errorf("DeleteSuppressions(no filter) = %v, want ErrBadFilter", err)
	}
	n, err := db.DeleteSuppressions(ctx, store.SuppressionFilter{Domain: "old.example"}, "ops", "domain fixed")
	if err != nil || n != 5 {
		t.Fatalf("DeleteSuppressions(domain) = %d, %v, want 5", n, err)
	}
	left, _ := db.CountSuppressions(ctx, store.SuppressionFilter{})
	if left != 5 {
		t.Errorf("%d entries left, want 5", left)
	}
	evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "d3@old.example", Type: parse.EventSuppressionRemoved})
	if len(evs) != 1 || evs[0].Actor != "ops" || evs[0].Note != "domain fixed" {
		t.Errorf("removal events = %+v", evs)
	}
}

// rows is a SuppressionSource over a slice.
type rows struct {
	items []store.NewSuppression
	i     int
}

func (r *rows) Next() (store.NewSuppression, bool) {
	if r.i >= len(r.items) {
		return store.NewSuppression{}, false
	}
	r.i++
	return r.items[r.i-1], true
}

func (r *rows) Err() error { return nil }

func TestImportIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("i1@example.com", "")}, "k", "api"); err != nil {
		t.Fatal(err)
	}
	var items []store.NewSuppression
	for i := range 20 {
		items = append(items, store.NewSuppression{Email: fmt.Sprintf("i%d@example.com", i), Reason: store.ReasonImport, Note: "crm export"})
	}
	items = append(items, items[3]) // a duplicate row
	res, err := db.ImportSuppressions(ctx, &rows{items: items}, "importer")
	if err != nil {
		t.Fatal(err)
	}
	if res != (store.ImportResult{Imported: 21, Added: 19, Existing: 1}) {
		t.Errorf("first import = %+v, want 21 rows, 19 added, 1 existing", res)
	}
	res, err = db.ImportSuppressions(ctx, &rows{items: items}, "importer")
	if err != nil || res != (store.ImportResult{Imported: 21, Added: 0, Existing: 20}) {
		t.Errorf("second import = %+v, %v, want nothing added", res, err)
	}
	s, err := db.GetSuppression(ctx, "i7@example.com", "")
	if err != nil || s.Reason != store.ReasonImport || s.CreatedBy != "importer" || s.Source != "import" {
		t.Errorf("imported entry = %+v, %v", s, err)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	if any, err := db.AnyAPIKeys(ctx); err != nil || any {
		t.Fatalf("AnyAPIKeys() on a new database = %v, %v", any, err)
	}
	k, token, err := db.CreateAPIKey(ctx, store.NewAPIKey{Name: "mautic", Scopes: []store.KeyScope{store.KeySuppressionsRead}, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, store.TokenPrefix) || len(token) < 40 || !strings.HasPrefix(token, k.Prefix) {
		t.Errorf("token %q, prefix %q", token, k.Prefix)
	}
	got, err := db.AuthenticateAPIKey(ctx, token)
	if err != nil || got.ID != k.ID || got.Tenant != "acme" || !got.Has(store.KeySuppressionsRead) || got.Has(store.KeySuppressionsWrite) {
		t.Errorf("AuthenticateAPIKey() = %+v, %v", got, err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, token+"x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a wrong token = %v, want ErrNotFound", err)
	}
	if _, _, err := db.CreateAPIKey(ctx, store.NewAPIKey{Name: "mautic", Scopes: []store.KeyScope{store.KeyAdmin}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second active key named mautic = %v, want ErrConflict", err)
	}
	for _, bad := range []store.NewAPIKey{{Name: "x"}, {Name: "x", Scopes: []store.KeyScope{"root"}}, {Name: "x y", Scopes: []store.KeyScope{store.KeyAdmin}},
		{Name: "x", Scopes: []store.KeyScope{store.KeyAdmin}, Tenant: "Bad Tenant"}} {
		if _, _, err := db.CreateAPIKey(ctx, bad); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("CreateAPIKey(%+v) = %v, want ErrBadKey", bad, err)
		}
	}
	if _, err := db.RevokeAPIKey(ctx, "mautic"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revoked token = %v, want ErrNotFound", err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Errorf("ListAPIKeys() = %+v, %v", keys, err)
	}
	if any, _ := db.AnyAPIKeys(ctx); any {
		t.Error("AnyAPIKeys() with only a revoked key = true")
	}
}

// TestCachesAcrossReplicas runs two stores on one database, as two
// replicas would, each with its notification listener: a change made
// through one is seen at once by the other's cached single check, API key
// lookups and policy.
func TestCachesAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := dbtest.URL(t)
	open := func() *store.DB {
		db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		done := make(chan struct{})
		go func() { defer close(done); _ = db.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return db
	}
	a, b := open(), open()
	waitFor(t, "listeners", func() bool { return a.Listening() && b.Listening() })
	const addr = "cached@example.com"
	// b caches "not suppressed".
	for range 3 {
		if _, err := b.GetSuppression(ctx, addr, ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetSuppression() = %v", err)
		}
	}
	if _, err := a.Record(ctx, input("replica", bounce(addr, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the new suppression", func() bool { _, err := b.GetSuppression(ctx, addr, ""); return err == nil })
	if _, err := a.DeleteSuppression(ctx, addr, "", "k", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the removal", func() bool {
		_, err := b.GetSuppression(ctx, addr, "")
		return errors.Is(err, store.ErrNotFound)
	})
	// Keys: b authenticates (and caches), a revokes, b refuses.
	_, token, err := a.CreateAPIKey(ctx, store.NewAPIKey{Name: "k", Scopes: []store.KeyScope{store.KeyAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the key", func() bool { any, _ := b.AnyAPIKeys(ctx); return any })
	if _, err := b.AuthenticateAPIKey(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeAPIKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to refuse the revoked key", func() bool {
		_, err := b.AuthenticateAPIKey(ctx, token)
		return errors.Is(err, store.ErrNotFound)
	})
	// Policy: a lowers the soft threshold to 1; b applies it.
	if _, err := a.PutPolicy(ctx, store.Policy{SoftThreshold: 1}, "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to apply the new policy", func() bool {
		_, err := b.Record(ctx, input("soft-"+time.Now().String(), bounce("soft1@example.com", parse.ClassSoft, parse.ReasonNetworkError, "4.4.1", time.Now())))
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.GetSuppression(ctx, "soft1@example.com", "")
		return err == nil
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCleanupExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	db := dbtest.Open(t, store.Options{NowFunc: clk.Now})
	exp := clk.Now().Add(time.Hour)
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{{Email: "e@example.com", Reason: store.ReasonManual, ExpiresAt: &exp},
		manual("p@example.com", "")}, "k", "api"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CleanupExpired(ctx); err != nil || n != 0 {
		t.Errorf("CleanupExpired() before expiry = %d, %v", n, err)
	}
	clk.Set(exp.Add(time.Second))
	if n, err := db.CleanupExpired(ctx); err != nil || n != 1 {
		t.Errorf("CleanupExpired() after expiry = %d, %v, want 1", n, err)
	}
	evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "e@example.com", Type: parse.EventSuppressionRemoved})
	if len(evs) != 1 || evs[0].Actor != "system" || evs[0].Note != "expired" {
		t.Errorf("expiry events = %+v", evs)
	}
	if n, _ := db.CountSuppressions(ctx, store.SuppressionFilter{}); n != 1 {
		t.Errorf("%d entries left, want 1", n)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour) // relative: no test depends on the date
	events := []parse.Event{
		bounce("a@x.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(5*time.Minute)),
		bounce("b@x.example", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", h0.Add(10*time.Minute)),
		bounce("c@y.example", parse.ClassSender, parse.ReasonProtocolError, "5.5.1", h0.Add(15*time.Minute)),
		{Address: "d@y.example", Type: parse.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: h0.Add(20 * time.Minute)},
		{Address: "e@y.example", Type: parse.EventComplaint, Class: parse.ClassComplaint, Reason: parse.ReasonComplaint, OccurredAt: h0.Add(70 * time.Minute)},
		{Address: "f@y.example", Type: parse.EventDelay, Class: parse.ClassSoft, Reason: parse.ReasonDelayed, OccurredAt: h0.Add(80 * time.Minute)},
		bounce("g@z.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(90*time.Minute)),
	}
	for i, ev := range events {
		in := input(fmt.Sprintf("stats-%d", i), ev)
		if ev.Address == "g@z.example" {
			in.Scope = "tenant:acme"
		}
		if _, err := db.Record(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.RecordSent(ctx, "", "r1", []store.SentCount{{At: h0.Add(time.Minute), Count: 100}}); err != nil || !ok {
		t.Fatalf("RecordSent() = %v, %v", ok, err)
	}
	if ok, err := db.RecordSent(ctx, "", "r1", []store.SentCount{{At: h0, Count: 100}}); err != nil || ok {
		t.Errorf("RecordSent(same report id) = %v, %v, want ignored", ok, err)
	}
	q := store.StatsQuery{OnlyTenant: true, Since: h0, Until: h0.Add(3 * time.Hour), Bucket: store.BucketHour}
	rows, err := db.Stats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got := func(rs []store.StatsRow) string {
		var parts []string
		for _, r := range rs {
			rate := "null"
			if r.BounceRate != nil {
				rate = fmt.Sprintf("%.2f", *r.BounceRate)
			}
			parts = append(parts, fmt.Sprintf("%s %s sent=%d/%s d=%d h=%d s=%d snd=%d c=%d delay=%d rate=%s",
				r.BucketStart.Format("15"), r.Key, r.Sent, r.SentBasis, r.Delivered, r.Hard, r.Soft, r.Sender, r.Complaints, r.Delays, rate))
		}
		return strings.Join(parts, "; ")
	}
	first, second := h0.Format("15"), h0.Add(time.Hour).Format("15")
	want := first + "  sent=100/reported d=1 h=1 s=1 snd=1 c=0 delay=0 rate=0.02; " + second + "  sent=0/observed d=0 h=0 s=0 snd=0 c=1 delay=1 rate=null"
	if got(rows) != want {
		t.Errorf("Stats(hour) =\n%s\nwant\n%s", got(rows), want)
	}
	q.GroupBy = store.GroupDomain
	rows, _ = db.Stats(ctx, q)
	want = first + " x.example sent=2/observed d=0 h=1 s=1 snd=0 c=0 delay=0 rate=1.00; " + first + " y.example sent=2/observed d=1 h=0 s=0 snd=1 c=0 delay=0 rate=0.00; " + second + " y.example sent=0/observed d=0 h=0 s=0 snd=0 c=1 delay=1 rate=null"
	if got(rows) != want {
		t.Errorf("Stats(by domain) =\n%s\nwant\n%s", got(rows), want)
	}
	q.GroupBy, q.Groups = store.GroupReason, 1
	rows, _ = db.Stats(ctx, q)
	if !slices.ContainsFunc(rows, func(r store.StatsRow) bool { return r.Key == store.StatsOtherKey }) {
		t.Errorf("Stats(by reason, 1 group) = %s, want an (other) row", got(rows))
	}
	q.Tenant, q.GroupBy = "acme", store.GroupNone
	rows, _ = db.Stats(ctx, q)
	if want := second + "  sent=1/observed d=0 h=1 s=0 snd=0 c=0 delay=0 rate=1.00"; got(rows) != want {
		t.Errorf("Stats(tenant acme) = %s, want %s", got(rows), want)
	}
	if _, err := db.Stats(ctx, store.StatsQuery{Since: h0, Until: h0.Add(10000 * time.Hour), Bucket: store.BucketHour}); !errors.Is(err, store.ErrBadStats) {
		t.Errorf("Stats(10000 hourly buckets) = %v, want ErrBadStats", err)
	}
}

// TestBounceOnManualEntry: evidence arriving for an address already added
// by hand refreshes that entry (stronger evidence describes it) and does
// not count as a new suppression.
func TestBounceOnManualEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("m@example.com", ""), manual("s@example.com", "")}, "ops", "api"); err != nil {
		t.Fatal(err)
	}
	out, err := db.Record(ctx, input("on-manual", bounce("m@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()),
		bounce("s@example.com", parse.ClassSoft, parse.ReasonDomainUnknown, "4.1.2", time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if out.SuppressionsAdded != 0 {
		t.Errorf("SuppressionsAdded = %d, want 0: both were suppressed already", out.SuppressionsAdded)
	}
	m, _ := db.GetSuppression(ctx, "m@example.com", "")
	if m.Reason != parse.ReasonUserUnknown || m.Class != parse.ClassHard || m.CreatedBy != "ops" || m.Note != "by hand" || m.ExpiresAt != nil {
		t.Errorf("manual entry after a hard bounce = %+v, want it described as hard, still by ops", m)
	}
	// A soft policy with threshold 1 would put s on the list with an expiry;
	// the manual entry outranks soft and keeps never expiring.
	if _, err := db.PutPolicy(ctx, store.Policy{SoftThreshold: 1}, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Record(ctx, input("on-manual-2", bounce("s@example.com", parse.ClassSoft, parse.ReasonDomainUnknown, "4.1.2", time.Now().Add(48*time.Hour)))); err != nil {
		t.Fatal(err)
	}
	s, _ := db.GetSuppression(ctx, "s@example.com", "")
	if s.Reason != store.ReasonManual || s.ExpiresAt != nil {
		t.Errorf("manual entry after soft failures = %+v, want it unchanged and permanent", s)
	}
}

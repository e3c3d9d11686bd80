package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/store"
)

// TestQueryParamsMatchSpec keeps the query parameters each route checks
// and the ones openapi.yaml documents for it in step.
func TestQueryParamsMatchSpec(t *testing.T) {
	t.Parallel()
	doc := spec(t)
	validatorMu.Lock()
	model, err := doc.BuildV3Model()
	validatorMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			var names []string
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.In == "query" {
					names = append(names, p.Name)
				}
			}
			documented[strings.ToUpper(method)+" "+path] = names
		}
	}
	for route, names := range api.QueryParams {
		doc, ok := documented[route]
		if !ok {
			t.Errorf("%s checks query parameters but is not in openapi.yaml", route)
			continue
		}
		got, want := slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(doc))
		if !slices.Equal(got, want) {
			t.Errorf("%s takes %v, openapi.yaml documents %v", route, got, want)
		}
	}
	// Every operation answering a page of a list checks its parameters.
	for route, names := range documented {
		if slices.Contains(names, "cursor") {
			if _, ok := api.QueryParams[route]; !ok {
				t.Errorf("%s pages with a cursor but does not refuse unknown parameters", route)
			}
		}
	}
}

// TestUnknownQueryParamsAre400: every list route names the parameter it
// does not know, and a misspelt bulk-delete filter removes nothing.
func TestUnknownQueryParamsAre400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/messages", "message/rfc822", dsn("unknown-params", "keep@example.net", "5.1.1", "smtp; 550 5.1.1 User unknown"), true)
	for _, tt := range []struct{ method, path, param string }{
		{"GET", "/v1/events?clas=hard", "clas"},
		{"GET", "/v1/events?type=bounce&recipent=keep@example.net", "recipent"},
		{"GET", "/v1/suppressions?limit=5&reasons=user_unknown", "reasons"},
		{"GET", "/v1/recipients/keep@example.net?page=2", "page"},
		{"GET", "/v1/stats?group=domain", "group"},
		{"GET", "/v1/sender-health?bucket=day&since_=x", "since_"},
		{"GET", "/v1/quarantine?offset=10", "offset"},
		{"GET", "/v1/codes?lang=es", "lang"},
		{"GET", "/v1/events?b=1&a=2", "a"}, // the first in name order
		{"DELETE", "/v1/suppressions?domian=example.net&confirm=true", "domian"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			p := problemOf(t, h.do(tt.method, tt.path, "", nil, false), 400)
			if p["param"] != tt.param || !strings.Contains(fmt.Sprint(p["detail"]), tt.param) {
				t.Errorf("problem %v, want param %q named in the detail", p, tt.param)
			}
		})
	}
	if _, err := h.db.GetSuppression(t.Context(), "keep@example.net", store.GlobalScope); err != nil {
		t.Errorf("a bulk delete with a misspelt filter removed an entry: %v", err)
	}
	// Known parameters still work, with and without values.
	if r := h.get("/v1/events?class=hard&tenant="); r.status != 200 {
		t.Errorf("GET /v1/events?class=hard&tenant= = %d %s", r.status, r.body)
	}
}

// TestEventFiltersOverHTTP: class, reason and type filter events; a
// sender-side failure is never listed as hard.
func TestEventFiltersOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/messages", "message/rfc822", dsntest.DSN("filters",
		dsntest.Rcpt{Address: "gone@example.com", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 <gone@example.com>: User unknown"},
		dsntest.Rcpt{Address: "auth@example.com", Status: "5.7.0", Diagnostic: "smtp; 530 5.7.0 Authentication required"},
		dsntest.Rcpt{Address: "full@example.com", Status: "4.2.2", Action: "delayed", Diagnostic: "smtp; 452 4.2.2 Mailbox full"},
	), true)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"class=hard", []string{"gone@example.com"}},
		{"class=sender", []string{"auth@example.com"}},
		{"class=hard&type=bounce", []string{"gone@example.com"}},
		{"reason=auth_required", []string{"auth@example.com"}},
		{"reason=user_unknown&class=hard", []string{"gone@example.com"}},
		{"reason=user_unknown&class=sender", nil},
		{"type=delay", []string{"full@example.com"}},
	} {
		var page struct{ Items []store.Event }
		h.get("/v1/events?"+tt.query).json(t, &page)
		var got []string
		for _, e := range page.Items {
			got = append(got, e.Address)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("GET /v1/events?%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{"class=fatal", "reason=nope"} {
		p := problemOf(t, h.do("GET", "/v1/events?"+q, "", nil, false), 400)
		if name, _, _ := strings.Cut(q, "="); p["param"] != name {
			t.Errorf("GET /v1/events?%s: param %v, want %s", q, p["param"], name)
		}
	}
}

var nextLinkRE = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// nextLink returns the target of a response's Link rel="next", "" when
// there is none.
func nextLink(t *testing.T, r response) string {
	t.Helper()
	links := r.header.Values("Link")
	if len(links) == 0 {
		return ""
	}
	m := nextLinkRE.FindStringSubmatch(links[0])
	if len(links) != 1 || m == nil {
		t.Fatalf("Link %q, want one <...>; rel=\"next\"", links)
	}
	return m[1]
}

// TestLinkAndTotalOverHTTP follows Link rel="next" through every paged
// list until it ends, and checks the opt-in total.
func TestLinkAndTotalOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	var rcpts []dsntest.Rcpt
	for i := range 5 {
		rcpts = append(rcpts, dsntest.Rcpt{Address: fmt.Sprintf("l%d@example.com", i), Status: "5.1.1"})
	}
	h.do("POST", "/v1/messages", "message/rfc822", dsntest.DSN("links", rcpts...), true)
	for i := range 3 { // three events of one address, for its history
		h.do("POST", "/v1/messages", "message/rfc822", dsn(fmt.Sprintf("hist%d", i), "h@example.com", "4.2.2", "smtp; 452 4.2.2 full"), true)
	}
	for _, tt := range []struct {
		first string
		items func(response) int
		want  int64
	}{
		{"/v1/suppressions?limit=2&domain=example.com&total=true", countItems, 5},
		{"/v1/events?limit=2&type=bounce&class=hard&total=true", countItems, 5},
		{"/v1/recipients/h@example.com?limit=2&total=true", countHistory, 3},
		{"/v1/quarantine?limit=2&total=true", countItems, 0},
	} {
		t.Run(tt.first, func(t *testing.T) {
			path, seen, pages := tt.first, 0, 0
			for path != "" {
				if pages++; pages > 10 {
					t.Fatal("the Link chain does not end")
				}
				r := h.get(path)
				if r.status != http.StatusOK {
					t.Fatalf("GET %s = %d %s", path, r.status, r.body)
				}
				var body struct {
					NextCursor string `json:"next_cursor"`
					Total      *int64
					History    struct {
						NextCursor string `json:"next_cursor"`
						Total      *int64
					}
				}
				r.json(t, &body)
				cursor, total := body.NextCursor, body.Total
				if strings.HasPrefix(tt.first, "/v1/recipients/") {
					cursor, total = body.History.NextCursor, body.History.Total
				}
				if total == nil || *total != tt.want {
					t.Errorf("GET %s: total %v, want %d", path, total, tt.want)
				}
				seen += tt.items(r)
				next := nextLink(t, r)
				if (next == "") != (cursor == "") {
					t.Fatalf("GET %s: Link %q with next_cursor %q", path, next, cursor)
				}
				if next != "" {
					u, err := url.Parse(next)
					if err != nil || u.Query().Get("cursor") != cursor || u.Query().Get("limit") != "2" || u.IsAbs() {
						t.Fatalf("Link target %q: want a relative URI with cursor %q and the other parameters kept", next, cursor)
					}
				}
				path = next
			}
			if int64(seen) != tt.want {
				t.Errorf("followed Link through %d items, want %d", seen, tt.want)
			}
		})
	}
	// Without total=true there is no total.
	if r := h.get("/v1/events?limit=2"); strings.Contains(string(r.body), `"total"`) {
		t.Errorf("GET /v1/events without total=true: %s", r.body)
	}
	problemOf(t, h.do("GET", "/v1/events?total=yes", "", nil, false), 400)
}

func countItems(r response) int {
	var p struct{ Items []any }
	_ = json.Unmarshal(r.body, &p)
	return len(p.Items)
}

func countHistory(r response) int {
	var p struct{ History struct{ Items []any } }
	_ = json.Unmarshal(r.body, &p)
	return len(p.History.Items)
}

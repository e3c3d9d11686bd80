package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var (
	specOnce sync.Once
	specDoc  libopenapi.Document
	errSpec  error
	// validatorMu serialises NewValidator: it builds the model of the
	// shared document, which is not safe to do from two tests at once.
	validatorMu sync.Mutex
)

// newValidator returns a validator for openapi.yaml.
func newValidator(t testing.TB, opts ...config.Option) validator.Validator {
	t.Helper()
	doc := spec(t)
	validatorMu.Lock()
	defer validatorMu.Unlock()
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return v
}

func spec(t testing.TB) libopenapi.Document {
	t.Helper()
	specOnce.Do(func() {
		var raw []byte
		if raw, errSpec = os.ReadFile("../../openapi.yaml"); errSpec != nil {
			return
		}
		specDoc, errSpec = libopenapi.NewDocument(raw)
	})
	if errSpec != nil {
		t.Fatalf("openapi.yaml: %v", errSpec)
	}
	return specDoc
}

// harness is a real server on 127.0.0.1:0 over a real database, with a
// client that checks every exchange against openapi.yaml.
//
// Requests carry token as a bearer key when it is set. The spec requires
// a key on most routes; the validator accepts a request without one only
// while the server runs open (no keys exist and none is configured).
type harness struct {
	t     *testing.T
	srv   *httptest.Server
	api   *api.Server
	db    *store.DB
	reg   *prometheus.Registry
	valid validator.Validator
	token string
	open  atomic.Bool
	// now is the clock the store, the ingester and the server share.
	now func() time.Time
}

func newHarness(t *testing.T, opts api.Options) *harness {
	t.Helper()
	return newHarnessAt(t, opts, time.Now)
}

// newHarnessAt is newHarness on the clock now, shared by the store, the
// ingester and the server.
func newHarnessAt(t *testing.T, opts api.Options, now func() time.Time) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{Registerer: reg, NowFunc: now})
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t), Registerer: reg, NowFunc: now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Deps{
		Ingester: mail, Messages: db, Suppressions: db, Events: db, DB: db,
		Bulk: db, Exporter: db, Recipients: db, Stats: db, Policy: db, Keys: db, Quarantine: db,
		Subscriptions: db, Changes: db,
		Logger: dbtest.Logger(t), Registerer: reg, Gatherer: reg, NowFunc: now,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: httptest.NewServer(s), api: s, db: db, reg: reg, now: now}
	h.open.Store(opts.AdminKey == "" && opts.Auth != api.AuthOn)
	v := newValidator(t, config.WithAuthenticationFunc(func(_ context.Context, in *config.AuthenticationInput) error {
		if strings.HasPrefix(in.Request.Header.Get("Authorization"), "Bearer ") || h.open.Load() {
			return nil
		}
		return errors.New("no bearer key and the server is not open")
	}))
	h.valid = v
	t.Cleanup(h.srv.Close)
	return h
}

// key creates an API key in the harness's database and returns its token;
// from then on the server requires keys.
func (h *harness) key(name string, tenant string, scopes ...store.KeyScope) string {
	h.t.Helper()
	_, token, err := h.db.CreateAPIKey(context.Background(), store.NewAPIKey{Name: name, Scopes: scopes, Tenant: tenant})
	if err != nil {
		h.t.Fatal(err)
	}
	h.open.Store(false)
	return token
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request and checks the response against the spec (and the
// request too, unless the test sends a bad one on purpose).
func (h *harness) do(method, path, contentType string, body []byte, checkRequest bool) response {
	h.t.Helper()
	return h.doAs(h.token, method, path, contentType, body, checkRequest)
}

// doAs is do with the given bearer token ("" for none).
func (h *harness) doAs(token, method, path, contentType string, body []byte, checkRequest bool, headers ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	// The validator reads bodies itself: hand it fresh copies.
	vreq, _ := http.NewRequest(method, "http://127.0.0.1:8025"+path, bytes.NewReader(body))
	vreq.Header = req.Header.Clone()
	if checkRequest {
		if ok, errs := h.valid.ValidateHttpRequest(vreq); !ok {
			h.t.Errorf("%s %s: request does not match openapi.yaml: %s", method, path, describe(errs))
		}
		vreq, _ = http.NewRequest(method, "http://127.0.0.1:8025"+path, bytes.NewReader(body))
		vreq.Header = req.Header.Clone()
	}
	vresp := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got))}
	if ok, errs := h.valid.ValidateHttpResponse(vreq, vresp); !ok {
		h.t.Errorf("%s %s: %d response does not match openapi.yaml: %s\nbody: %s", method, path, resp.StatusCode, describe(errs), got)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: got}
}

func describe[E interface{ Error() string }](errs []E) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

func (h *harness) get(path string) response { return h.do("GET", path, "", nil, true) }

// TestRoutesMatchSpec keeps the route table and openapi.yaml in step.
func TestRoutesMatchSpec(t *testing.T) {
	t.Parallel()
	s, err := api.New(api.Deps{}, withWebhookRoutes(api.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	err = chi.Walk(s.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := spec(t)
	validatorMu.Lock() // building the model races with NewValidator on the shared document
	model, err := doc.BuildV3Model()
	validatorMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	if strings.Join(routes, "\n") != strings.Join(documented, "\n") {
		t.Errorf("routes and openapi.yaml differ\nrouter:\n%s\n\nopenapi.yaml:\n%s", strings.Join(routes, "\n"), strings.Join(documented, "\n"))
	}
}

func TestSpecIsValidOpenAPI31(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	validatorMu.Lock()
	ok, errs := v.ValidateDocument()
	validatorMu.Unlock()
	if !ok {
		t.Errorf("openapi.yaml is not a valid OpenAPI document: %s", describe(errs))
	}
	if got := spec(t).GetVersion(); got != "3.1.0" {
		t.Errorf("openapi version %q, want 3.1.0", got)
	}
}

func problemOf(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p map[string]any
	r.json(t, &p)
	if p["status"] != float64(status) || p["title"] == "" || p["type"] == "" {
		t.Errorf("problem %v lacks status/title/type", p)
	}
	return p
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	if r := h.get("/healthz"); r.status != 200 {
		t.Errorf("/healthz = %d", r.status)
	}
	if r := h.get("/readyz"); r.status != 200 {
		t.Errorf("/readyz = %d %s", r.status, r.body)
	}
	h.do("POST", "/v1/messages", "message/rfc822", dsn("metrics", "m@example.com", "5.1.1", "smtp; 550 5.1.1 User unknown"), true)
	r := h.get("/metrics")
	for _, name := range []string{
		`bounced_messages_received_total{source="http"} 1`,
		`bounced_events_total{class="hard",mailbox_provider="other",provider="",reason="user_unknown",source="http",type="bounce"} 1`, // no MX lookups in this harness
		`bounced_suppressions_added_total{reason="user_unknown",scope_kind="global"} 1`,
		`bounced_http_request_duration_seconds_bucket{code="201",method="POST",route="/v1/messages"`,
		`bounced_db_pool_max_conns`,
		`bounced_db_pool_acquired_conns`,
	} {
		if !bytes.Contains(r.body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if bytes.Contains(r.body, []byte("m@example.com")) {
		t.Error("/metrics exposes an email address")
	}
	// Readiness follows the database; liveness does not.
	h.db.Close()
	problemOf(t, h.get("/readyz"), 503)
	if r := h.get("/healthz"); r.status != 200 {
		t.Errorf("/healthz with the database closed = %d, want 200", r.status)
	}
}

func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{MaxBodyBytes: 4096})
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		param                     string
	}{
		{"wrong content type", "POST", "/v1/messages", "application/x-www-form-urlencoded", []byte("a=b"), 415, ""},
		{"no content type", "POST", "/v1/messages", "", []byte("x"), 415, ""},
		{"empty body", "POST", "/v1/messages", "message/rfc822", nil, 400, "body"},
		// curl --data @bounce.eml: its line breaks stripped.
		{"no line breaks", "POST", "/v1/messages", "message/rfc822", []byte("From: a@b.exampleTo: c@d.exampleSubject: x"), 400, "body"},
		{"too large", "POST", "/v1/messages", "message/rfc822", bytes.Repeat([]byte("x"), 5000), 413, ""},
		{"unknown suppression", "GET", "/v1/suppressions/nobody@example.com", "", nil, 404, ""},
		{"bad email", "GET", "/v1/suppressions/not-an-address", "", nil, 400, "email"},
		{"bad limit", "GET", "/v1/suppressions?limit=0", "", nil, 400, "limit"},
		{"bad cursor", "GET", "/v1/suppressions?cursor=%21%21", "", nil, 400, "cursor"},
		{"bad since", "GET", "/v1/events?since=yesterday", "", nil, 400, "since"},
		{"bad type", "GET", "/v1/events?type=explosion", "", nil, 400, "type"},
		{"unknown message", "GET", "/v1/messages/999999", "", nil, 404, ""},
		{"bad code", "GET", "/v1/codes/banana", "", nil, 400, "code"},
		{"delete unknown", "DELETE", "/v1/suppressions/nobody@example.com", "", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.ctype, tt.body, false)
			p := problemOf(t, r, tt.status)
			if tt.param != "" && p["param"] != tt.param {
				t.Errorf("problem param = %v, want %s", p["param"], tt.param)
			}
		})
	}
	// curl --data without -H sends a form: the answer says what to send.
	form := problemOf(t, h.do("POST", "/v1/messages", "application/x-www-form-urlencoded", []byte("From: a@b.example"), false), 415)
	if d := fmt.Sprint(form["detail"]); !strings.Contains(d, "--data-binary") || !strings.Contains(d, "message/rfc822") {
		t.Errorf("415 for a form: detail %q, want a hint naming --data-binary and message/rfc822", d)
	}
	// Routes outside the table answer problems too.
	r, err := http.Get(h.srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /nope = %d %s, want 404 problem", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

func TestUnparsableMessageIsKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	garbage := []byte("\x00\x01 this is not mail\r\nat all")
	r := h.do("POST", "/v1/messages", "message/rfc822", garbage, true)
	p := problemOf(t, r, 422)
	id, ok := p["raw_id"].(float64)
	if !ok || id <= 0 {
		t.Fatalf("422 problem %v lacks raw_id", p)
	}
	raw := h.do("GET", fmt.Sprintf("/v1/messages/%d/raw", int64(id)), "", nil, true)
	if raw.status != 200 || !bytes.Equal(raw.body, garbage) {
		t.Errorf("stored raw = %d %q, want the posted bytes", raw.status, raw.body)
	}
	var m store.Message
	h.get(fmt.Sprintf("/v1/messages/%d", int64(id))).json(t, &m)
	if m.ParseStatus != store.ParseFailed || m.ParseError == "" {
		t.Errorf("message = %+v, want parse_status failed with an error", m)
	}
}

// newServer serves s on 127.0.0.1:0 and returns its base URL.
func newServer(t *testing.T, s http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

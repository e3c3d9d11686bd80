package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/bounced/bounced/internal/store"
)

// The policy is edited by full replacement (PUT) or JSON Merge Patch
// (PATCH, RFC 7396), each guarded by the version read: If-Match with the
// ETag GET gave, or the version in the body. Without either the edit is
// refused (428, RFC 6585), and against a changed policy it fails (412,
// RFC 9110), so concurrent edits never overwrite each other unseen.

// mergePatchType is the media type of a JSON Merge Patch.
const mergePatchType = "application/merge-patch+json"

// policyReadOnly are the fields of a policy a client reads but does not
// set: a body may carry them back (a GET edited and sent), and they are
// ignored, except version, which is the precondition.
var policyReadOnly = []string{"version", "updated_at", "updated_by"}

// policyFields are the fields a policy document must hold: every field
// of store.Policy but the read-only ones. They are found when first
// needed, not at the start of every command (`bounced parse` included).
var policyFields = sync.OnceValue(func() []string {
	b, err := json.Marshal(store.Policy{})
	if err != nil {
		panic(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	var names []string
	for name := range m {
		if !slices.Contains(policyReadOnly, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
})

func policyETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.deps.Policy.GetPolicy(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("ETag", policyETag(p.Version))
	writeJSON(w, http.StatusOK, p)
	return nil
}

// putPolicy replaces the whole policy: every field must be sent (422
// names the missing ones), and the version edited (If-Match or version).
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r, "application/json")
	if err != nil {
		return err
	}
	doc, err := jsonObject(body)
	if err != nil {
		return err
	}
	want, err := policyPrecondition(r, doc)
	if err != nil {
		return err
	}
	return s.replacePolicy(w, r, doc, want)
}

// patchPolicy applies a JSON Merge Patch to the policy: fields it names
// change, null removes a per-reason rule (or, for a required field, is
// refused with 422), the rest stay.
func (s *Server) patchPolicy(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r, mergePatchType)
	if err != nil {
		return err
	}
	patch, err := jsonObject(body)
	if err != nil {
		return err
	}
	want, err := policyPrecondition(r, patch)
	if err != nil {
		return err
	}
	cur, err := s.deps.Policy.GetPolicy(r.Context())
	if err != nil {
		return err
	}
	if cur.Version != want {
		return preconditionFailed(r)
	}
	target, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	for _, name := range policyReadOnly {
		delete(patch, name)
	}
	if target, err = withoutFields(target, policyReadOnly); err != nil {
		return err
	}
	patchJSON, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	merged, err := jsonpatch.MergePatch(target, patchJSON)
	if err != nil {
		return badRequest("body", "the merge patch does not apply: %v", err)
	}
	doc, err := jsonObject(merged)
	if err != nil {
		return err
	}
	return s.replacePolicy(w, r, doc, want)
}

// replacePolicy stores doc, a whole policy, over version want.
func (s *Server) replacePolicy(w http.ResponseWriter, r *http.Request, doc map[string]json.RawMessage, want int64) error {
	var missing []string
	for _, name := range policyFields() {
		if v, ok := doc[name]; !ok || bytes.Equal(v, []byte("null")) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return &MissingFieldsError{Fields: missing}
	}
	for _, name := range policyReadOnly {
		delete(doc, name)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var p store.Policy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return badRequest("body", "the body is not a valid policy: %v", err)
	}
	// Checked as sent, before the store fills any zero with a default.
	if err := p.Validate(); err != nil {
		return err
	}
	p.Version = want
	out, err := s.deps.Policy.PutPolicy(r.Context(), p, who(r).name)
	if errors.Is(err, store.ErrVersionMismatch) {
		return preconditionFailed(r)
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", policyETag(out.Version))
	writeJSON(w, http.StatusOK, out)
	return nil
}

// policyPrecondition returns the version an edit was made on: the ETag
// of If-Match, or the version in the body doc; both must agree when both
// are sent. Neither is ErrPreconditionRequired.
func policyPrecondition(r *http.Request, doc map[string]json.RawMessage) (int64, error) {
	var fromBody *int64
	if raw, ok := doc["version"]; ok && !bytes.Equal(raw, []byte("null")) {
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
			return 0, badRequest("version", "version is the number GET /v1/policy answered")
		}
		fromBody = &v
	}
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		if fromBody == nil {
			return 0, ErrPreconditionRequired
		}
		return *fromBody, nil
	}
	tag := strings.TrimSpace(strings.Join(values, ","))
	if strings.Contains(tag, ",") || tag == "*" {
		return 0, badRequest("If-Match", "If-Match takes the one ETag GET /v1/policy answered, such as \"3\"")
	}
	unquoted, ok := strings.CutPrefix(tag, `"`)
	unquoted, ok2 := strings.CutSuffix(unquoted, `"`)
	v, err := strconv.ParseInt(unquoted, 10, 64)
	if !ok || !ok2 || err != nil || v < 0 {
		// A weak or foreign tag never matches the policy's strong one.
		return 0, &PreconditionFailedError{Param: "If-Match"}
	}
	if fromBody != nil && *fromBody != v {
		return 0, &PreconditionFailedError{Param: "version"}
	}
	return v, nil
}

// preconditionFailed names what was stale: If-Match when it was sent,
// else the version in the body.
func preconditionFailed(r *http.Request) error {
	if len(r.Header.Values("If-Match")) > 0 {
		return &PreconditionFailedError{Param: "If-Match"}
	}
	return &PreconditionFailedError{Param: "version"}
}

// readBody reads a body of one of the media types, at most the server's
// limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, types ...string) ([]byte, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || !slices.Contains(types, mt) {
		return nil, unsupportedMediaType(types...)
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
}

// jsonObject reads a body that must be one JSON object.
func jsonObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, badRequest("body", "the body must be one JSON object")
	}
	if dec.More() {
		return nil, badRequest("body", "the body holds more than one JSON value")
	}
	return m, nil
}

// withoutFields removes top-level fields from a JSON object.
func withoutFields(obj []byte, names []string) ([]byte, error) {
	m, err := jsonObject(obj)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		delete(m, n)
	}
	return json.Marshal(m)
}

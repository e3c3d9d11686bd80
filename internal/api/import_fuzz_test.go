package api

import (
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// FuzzCSVRows: any upload either is refused up front or yields only
// valid rows, with each bad row counted; nothing panics.
func FuzzCSVRows(f *testing.F) {
	for _, s := range []string{
		"email\na@example.com\n",
		"email,scope,reason,note,expires_at\na@example.com,list:x,unsubscribe,hi,2999-01-01T00:00:00Z\nbad,,,,\n",
		"a@example.com\nb@example.com",
		"\ufeffEmail;Scope\n\"a@b.c\"",
		"email\n\"unterminated\n",
		"email,scope\nx@y.z,tenant:other\n",
	} {
		f.Add(s, "")
		f.Add(s, "acme")
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body, tenant string) {
		if tenant != "" && !store.ValidTenant(tenant) {
			return
		}
		p := principal{name: "fuzz", tenant: tenant}
		rows, err := newCSVRows(strings.NewReader(body), p, now, store.NewSuppression{Scope: store.TenantScope(tenant), Reason: store.ReasonImport})
		if err != nil {
			return
		}
		for n := 0; ; n++ {
			s, ok := rows.Next()
			if !ok {
				break
			}
			if n > len(body)+1 {
				t.Fatal("more rows than the body can hold")
			}
			if _, err := parse.NormalizeAddress(s.Email); err != nil {
				t.Fatalf("row address %q is not valid", s.Email)
			}
			if !store.ManualReason(s.Reason) || store.CheckScope(s.Scope) != nil || (tenant != "" && store.TenantOf(s.Scope) != tenant) {
				t.Fatalf("row %+v escapes validation", s)
			}
			if s.ExpiresAt != nil && !s.ExpiresAt.After(now) {
				t.Fatalf("row %+v expires in the past", s)
			}
		}
		if len(rows.errs) > importErrorsMax || len(rows.errs) > rows.invalid {
			t.Fatalf("%d errors reported for %d invalid rows", len(rows.errs), rows.invalid)
		}
	})
}

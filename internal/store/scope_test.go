package store_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/bounced/bounced/internal/store"
)

func TestQualifyScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tenant, scope, want string
		err                 error
	}{
		{"", "", "global", nil},
		{"", "list:news", "list:news", nil},
		{"", "tenant:acme/list:x", "tenant:acme/list:x", nil},
		{"acme", "", "tenant:acme", nil},
		{"acme", "global", "tenant:acme", nil},
		{"acme", "list:news", "tenant:acme/list:news", nil},
		{"acme", "tenant:acme/list:news", "tenant:acme/list:news", nil},
		{"acme", "tenant:other", "", store.ErrForbiddenScope},
		{"acme", "tenant:acmeco", "", store.ErrForbiddenScope},
		{"", "tenant:", "", store.ErrBadScope},
		{"", "tenant:Big", "", store.ErrBadScope},
		{"", "tenant:a/", "", store.ErrBadScope},
		{"", "has space", "", store.ErrBadScope},
	}
	for _, tt := range tests {
		got, err := store.QualifyScope(tt.tenant, tt.scope)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("QualifyScope(%q, %q) = %q, %v; want %q, %v", tt.tenant, tt.scope, got, err, tt.want, tt.err)
		}
	}
	for scope, want := range map[string][]string{
		"global":             {"global"},
		"list:a":             {"list:a", "global"},
		"tenant:t":           {"tenant:t", "global"},
		"tenant:t/list:a":    {"tenant:t/list:a", "tenant:t", "global"},
		"tenant:t/a/b":       {"tenant:t/a/b", "tenant:t", "global"},
		"tenant:t/stream:tx": {"tenant:t/stream:tx", "tenant:t", "global"},
	} {
		if got := store.VisibleScopes(scope); !slices.Equal(got, want) {
			t.Errorf("VisibleScopes(%q) = %v, want %v", scope, got, want)
		}
	}
	for scope, want := range map[string]store.ScopeKind{"global": "global", "tenant:t": "tenant", "tenant:t/list:a": "list",
		"list:a": "list", "stream:b": "stream", "campaign-7": "other", "tenant:t/x": "other"} {
		if got := store.KindOf(scope); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", scope, got, want)
		}
	}
}

// FuzzQualifyScope: whatever a client sends, a qualified scope is valid,
// belongs to the caller's tenant, and its checks see the global list.
func FuzzQualifyScope(f *testing.F) {
	for _, s := range []string{"", "global", "list:a", "tenant:acme", "tenant:acme/list:a", "tenant:b", "tenant:", "tenant:a//", "x\x00y"} {
		f.Add("acme", s)
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, tenant, scope string) {
		if tenant != "" && !store.ValidTenant(tenant) {
			return
		}
		q, err := store.QualifyScope(tenant, scope)
		if err != nil {
			return
		}
		if store.CheckScope(q) != nil {
			t.Fatalf("QualifyScope(%q, %q) = %q, which is not a valid scope", tenant, scope, q)
		}
		if tenant != "" && store.TenantOf(q) != tenant {
			t.Fatalf("QualifyScope(%q, %q) = %q, outside the tenant", tenant, scope, q)
		}
		if v := store.VisibleScopes(q); v[len(v)-1] != store.GlobalScope {
			t.Fatalf("VisibleScopes(%q) = %v does not end with global", q, v)
		}
	})
}

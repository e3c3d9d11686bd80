package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Scopes name suppression lists. "global" is seen by every check; other
// names are free text ("list:news", "stream:billing") except the reserved
// prefix "tenant:". A scope "tenant:T" is tenant T's own list and
// "tenant:T/NAME" one of T's named lists; everything under "tenant:T"
// belongs to tenant T and to no one else.
//
// A check in scope S sees S and every scope above it: "tenant:T/list:a"
// sees itself, "tenant:T" and "global"; "list:a" sees itself and "global".

// ErrBadScope means a scope or tenant name is malformed.
var ErrBadScope = errors.New("store: bad scope")

// ScopeMaxLen is the longest scope name.
const ScopeMaxLen = 200

const tenantPrefix = "tenant:"

// ScopeKind is the bounded category of a scope, for metrics labels.
type ScopeKind string

// Scope kinds.
const (
	ScopeKindGlobal ScopeKind = "global"
	ScopeKindTenant ScopeKind = "tenant"
	ScopeKindList   ScopeKind = "list"
	ScopeKindStream ScopeKind = "stream"
	ScopeKindOther  ScopeKind = "other"
)

// KindOf returns the kind of a valid scope.
func KindOf(scope string) ScopeKind {
	if scope == GlobalScope || scope == "" {
		return ScopeKindGlobal
	}
	_, rest, tenanted := splitTenant(scope)
	if tenanted && rest == "" {
		return ScopeKindTenant
	}
	if !tenanted {
		rest = scope
	}
	switch {
	case strings.HasPrefix(rest, "list:"):
		return ScopeKindList
	case strings.HasPrefix(rest, "stream:"):
		return ScopeKindStream
	}
	return ScopeKindOther
}

// ValidTenant reports whether t can name a tenant: 1 to 63 of a-z, 0-9,
// '.', '_' and '-', starting with a letter or digit.
func ValidTenant(t string) bool {
	if t == "" || len(t) > 63 {
		return false
	}
	for i, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// TenantScope is the root scope of tenant t ("global" for no tenant).
func TenantScope(t string) string {
	if t == "" {
		return GlobalScope
	}
	return tenantPrefix + t
}

// splitTenant splits "tenant:T/rest" into T and rest.
func splitTenant(scope string) (tenant, rest string, ok bool) {
	after, ok := strings.CutPrefix(scope, tenantPrefix)
	if !ok {
		return "", "", false
	}
	tenant, rest, _ = strings.Cut(after, "/")
	return tenant, rest, true
}

// TenantOf returns the tenant a scope belongs to ("" for none). It agrees
// with the bounced_scope_tenant SQL function.
func TenantOf(scope string) string {
	t, _, _ := splitTenant(scope)
	return t
}

// CheckScope validates a scope name; "" stands for global.
func CheckScope(scope string) error {
	if scope == "" {
		return nil
	}
	if len(scope) > ScopeMaxLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadScope, ScopeMaxLen)
	}
	for _, c := range scope {
		if unicode.IsControl(c) || unicode.IsSpace(c) || c == unicode.ReplacementChar {
			return fmt.Errorf("%w: %q holds a space or control character", ErrBadScope, scope)
		}
	}
	if t, rest, ok := splitTenant(scope); ok {
		if !ValidTenant(t) {
			return fmt.Errorf("%w: %q: tenant names are 1-63 of a-z 0-9 . _ -", ErrBadScope, scope)
		}
		if strings.Contains(scope[len(tenantPrefix):], "/") && rest == "" {
			return fmt.Errorf("%w: %q: empty name after the tenant", ErrBadScope, scope)
		}
	}
	return nil
}

// QualifyScope places scope inside tenant's namespace: for a tenant it
// turns "" and "global" into "tenant:T" and "list:a" into
// "tenant:T/list:a", keeps names already inside T, and refuses scopes of
// any other tenant. With no tenant it only validates.
func QualifyScope(tenant, scope string) (string, error) {
	if err := CheckScope(scope); err != nil {
		return "", err
	}
	if tenant == "" {
		if scope == "" {
			return GlobalScope, nil
		}
		return scope, nil
	}
	root := TenantScope(tenant)
	switch {
	case scope == "" || scope == GlobalScope || scope == root:
		return root, nil
	case strings.HasPrefix(scope, root+"/"):
		return scope, nil
	case strings.HasPrefix(scope, tenantPrefix):
		return "", ErrForbiddenScope
	}
	q := root + "/" + scope
	if len(q) > ScopeMaxLen {
		return "", fmt.Errorf("%w: longer than %d bytes inside the tenant", ErrBadScope, ScopeMaxLen)
	}
	return q, nil
}

// ErrForbiddenScope means a scope belongs to another tenant.
var ErrForbiddenScope = errors.New("store: scope belongs to another tenant")

// VisibleScopes lists the scopes a check in scope sees, most specific
// first.
func VisibleScopes(scope string) []string {
	if scope == "" || scope == GlobalScope {
		return []string{GlobalScope}
	}
	t, rest, ok := splitTenant(scope)
	switch {
	case ok && rest != "":
		return []string{scope, TenantScope(t), GlobalScope}
	default:
		return []string{scope, GlobalScope}
	}
}

// RootScope is where an event's bounces are suppressed: its tenant's own
// list, or global.
func RootScope(scope string) string { return TenantScope(TenantOf(scope)) }

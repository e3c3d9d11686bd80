package store

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bounced/bounced/internal/parse"
)

// Attribution: which scope an incoming event (a bounce, a complaint, a
// provider's notification) is recorded in. The rules, most binding first,
// are documented for operators in docs/operations.md ("Attribution"):
//
//  1. The channel it came by fixes the tenant: a webhook credential or a
//     mailbox bound to tenant T attributes only into T (T's own list or
//     one of T's lists), whatever else the event says; an unbound one
//     leaves every tenant open.
//  2. A scope the sender named (the generic webhook's scope field) wins,
//     placed inside the channel's tenant (QualifyScope).
//  3. Otherwise a message reported sent (POST /v1/sent) gives its scope:
//     the VERP token first, then the Message-IDs, each looked up in turn;
//     a record naming the recipient wins over one for any recipient. An
//     id whose records lie in several tenants attributes nothing (the next
//     one is tried); in several lists of one tenant, that tenant's own
//     list. Records of tenants the channel is not bound to are ignored.
//  4. Otherwise the channel's scope: its tenant's own list, or global.
//  5. A report naming its list (List-Id) places an event found in a
//     tenant's own list or global in that list ("list:ID" within the
//     tenant), so a complaint suppresses there under complaint_scope list.
//
// Each step only moves an event from global into a tenant, or from a
// tenant's own list into one of its lists: what it suppresses is seen by
// fewer checks, never by more.

// SentRecordsMax bounds the records one lookup returns.
const SentRecordsMax = 1000

// SentRecord is a message reported sent, as attribution reads it.
type SentRecord struct {
	MessageKey string // sentKey of its Message-ID or VERP token
	AddressKey string // parse.AddressKey of its recipient; "" for any
	Scope      string // the full scope: "global", "tenant:T", "tenant:T/list:a"
}

// SentRecords are the records one lookup found.
type SentRecords []SentRecord

// SentRecords returns the messages reported sent within the retention
// whose Message-ID or VERP token is one of ids and whose recipient is one
// of addresses (or any), at most SentRecordsMax. It returns
// ErrUnavailable when the database is down.
func (db *DB) SentRecords(ctx context.Context, ids, addresses []string) (SentRecords, error) {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if k := sentKey(id); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	addrKeys := make([]string, len(addresses))
	for i, a := range addresses {
		addrKeys[i] = parse.AddressKey(a)
	}
	var out SentRecords
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		rows, err := q.Query(ctx, `
			SELECT message_key, address_key, CASE WHEN scope <> '' THEN scope
				WHEN tenant <> '' THEN 'tenant:' || tenant ELSE 'global' END
			FROM sent_messages
			WHERE message_key = ANY($1) AND (address_key = '' OR address_key = ANY($2)) AND sent_at > $3
			ORDER BY message_key, address_key, tenant
			LIMIT $4`,
			keys, addrKeys, db.now().Add(-SentMessageRetention), SentRecordsMax)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SentRecord, error) {
			var r SentRecord
			err := row.Scan(&r.MessageKey, &r.AddressKey, &r.Scope)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Attribution is what is known of where an incoming event belongs.
type Attribution struct {
	// Tenant is the tenant the channel is bound to ("" for none).
	Tenant string
	// Scope is the scope the sender named, already placed in Tenant
	// (QualifyScope); "" for none.
	Scope string
	// IDs are the ids that may name a message reported sent, strongest
	// first: the VERP token, then Message-IDs.
	IDs []string
	// ListID is the List-Id the report names (RFC 2919), "" for none.
	ListID string
}

// ScopeFor returns the scope an event about address is recorded in,
// following the rules above, with records from SentRecords.
func (r SentRecords) ScopeFor(a Attribution, address string) string {
	scope := a.Scope
	if scope == "" {
		scope = r.match(a.Tenant, address, a.IDs)
	}
	if scope == "" {
		scope = TenantScope(a.Tenant)
	}
	if a.Tenant != "" && TenantOf(scope) != a.Tenant {
		scope = TenantScope(a.Tenant) // never outside the channel's tenant
	}
	if id := ListScope(a.ListID); id != "" && (KindOf(scope) == ScopeKindGlobal || KindOf(scope) == ScopeKindTenant) {
		if q, err := QualifyScope(TenantOf(scope), id); err == nil {
			scope = q
		}
	}
	return scope
}

// match finds the scope of the first id with an unambiguous record.
func (r SentRecords) match(tenant, address string, ids []string) string {
	key := parse.AddressKey(address)
	for _, id := range ids {
		k := sentKey(id)
		if k == "" {
			continue
		}
		var exact, any []string
		for _, rec := range r {
			if rec.MessageKey != k || tenant != "" && TenantOf(rec.Scope) != tenant {
				continue
			}
			switch rec.AddressKey {
			case key:
				exact = append(exact, rec.Scope)
			case "":
				any = append(any, rec.Scope)
			}
		}
		scopes := exact
		if len(scopes) == 0 {
			scopes = any
		}
		if s := oneScope(scopes); s != "" {
			return s
		}
	}
	return ""
}

// oneScope is the scope scopes agree on: the one scope, or the tenant's
// own list when they are lists of one tenant; "" when they are empty or
// span tenants.
func oneScope(scopes []string) string {
	if len(scopes) == 0 {
		return ""
	}
	first := scopes[0]
	same, oneTenant := true, true
	for _, s := range scopes[1:] {
		same = same && s == first
		oneTenant = oneTenant && TenantOf(s) == TenantOf(first)
	}
	switch {
	case same:
		return first
	case oneTenant && TenantOf(first) != "":
		return TenantScope(TenantOf(first))
	}
	return ""
}

// ListScope turns a List-Id field (RFC 2919: an optional phrase and the
// list's id in angle brackets) into the scope "list:ID", lower-cased; ""
// when it holds no usable id.
func ListScope(listID string) string {
	id := strings.TrimSpace(listID)
	if i := strings.LastIndexByte(id, '<'); i >= 0 {
		if j := strings.IndexByte(id[i:], '>'); j > 0 {
			id = id[i+1 : i+j]
		}
	}
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" || strings.ContainsAny(id, "<>/") {
		return ""
	}
	s := "list:" + id
	if CheckScope(s) != nil || len(s) > ScopeMaxLen/2 {
		return ""
	}
	return s
}

// SentRecords looks up messages reported sent (see DB.SentRecords).
func (g *GroupCommitter) SentRecords(ctx context.Context, ids, addresses []string) (SentRecords, error) {
	return g.db.SentRecords(ctx, ids, addresses)
}

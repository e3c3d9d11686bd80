package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bounced/bounced/internal/parse"
)

// Suppression is an address that must not be mailed in a scope.
type Suppression struct {
	ID          int64        `json:"-"`
	Email       string       `json:"email"`
	Scope       string       `json:"scope"`
	Domain      string       `json:"domain"`
	Reason      parse.Reason `json:"reason"`
	Class       parse.Class  `json:"class"`
	Status      string       `json:"status"`
	ReplyCode   string       `json:"reply_code"`
	Diagnostic  string       `json:"diagnostic"`
	Source      string       `json:"source"`
	Provider    string       `json:"provider"`
	EventCount  int          `json:"event_count"`
	FirstSeenAt time.Time    `json:"first_seen_at"`
	LastSeenAt  time.Time    `json:"last_seen_at"`
	ExpiresAt   *time.Time   `json:"expires_at"`
	CreatedBy   string       `json:"created_by"`
	Note        string       `json:"note"`
	CreatedAt   time.Time    `json:"created_at"`
}

const suppressionColumns = `id, address, scope, domain, reason, class, status, reply_code, diagnostic,
	source, provider, event_count, first_seen_at, last_seen_at, expires_at, created_by, note, created_at`

func scanSuppression(row pgx.CollectableRow) (Suppression, error) {
	var s Suppression
	err := row.Scan(&s.ID, &s.Email, &s.Scope, &s.Domain, &s.Reason, &s.Class, &s.Status, &s.ReplyCode,
		&s.Diagnostic, &s.Source, &s.Provider, &s.EventCount, &s.FirstSeenAt, &s.LastSeenAt, &s.ExpiresAt,
		&s.CreatedBy, &s.Note, &s.CreatedAt)
	return s, err
}

// entry is an address to put on a list.
type entry struct {
	Scope      string
	Address    string
	Reason     parse.Reason
	Class      parse.Class
	Status     string
	ReplyCode  string
	Diagnostic string
	Source     string
	Provider   string
	EventID    int64
	At         time.Time
	ExpiresAt  *time.Time
	CreatedBy  string
	Note       string
}

// SQL fragments of the suppressions upsert (suppressSQL), which updates
// an entry s already there with the new evidence n. Stronger evidence
// describes the entry (complaint over hard over manual over soft); of
// equal strength, the more specific (a reason rather than "other", then a
// status code that says more than X.0.0), so a later, vaguer report never
// replaces the reason and status already recorded: the first specific one
// stays, the rest are counted. An entry never gets a shorter life:
// expires_at only grows, NULL (never) wins. An expired entry ("dead") is
// replaced whole. $17 is the current time in each statement that uses
// them.
const (
	deadSQL      = `(s.expires_at IS NOT NULL AND s.expires_at <= $17)`
	classRankSQL = `CASE %s WHEN 'complaint' THEN 4 WHEN 'hard' THEN 3 WHEN 'soft' THEN 1 ELSE 2 END`
	specificSQL  = `((%[1]s.reason <> 'other')::int * 2 + (%[1]s.status <> '' AND %[1]s.status NOT LIKE '_.0.0')::int)`
	newExpirySQL = `CASE WHEN ` + deadSQL + ` THEN n.expires_at
		WHEN s.expires_at IS NULL OR n.expires_at IS NULL THEN NULL
		ELSE greatest(s.expires_at, n.expires_at) END`
)

// outranksSQL says the new evidence n describes the entry instead of what
// s holds: stronger, or as strong and more specific.
var outranksSQL = "(" + fmt.Sprintf(classRankSQL, "n.class") + " > " + fmt.Sprintf(classRankSQL, "s.class") +
	" OR (" + fmt.Sprintf(classRankSQL, "n.class") + " = " + fmt.Sprintf(classRankSQL, "s.class") +
	" AND " + fmt.Sprintf(specificSQL, "n") + " > " + fmt.Sprintf(specificSQL, "s") + "))"

// suppressMergeSQL is what suppressSQL sets on an entry already there.
var suppressMergeSQL = `reason = CASE WHEN ` + deadSQL + ` OR ` + outranksSQL + ` THEN n.reason ELSE s.reason END,
				class = CASE WHEN ` + deadSQL + ` OR ` + outranksSQL + ` THEN n.class ELSE s.class END,
				status = CASE WHEN ` + deadSQL + ` OR ` + outranksSQL + ` THEN n.status ELSE s.status END,
				reply_code = CASE WHEN ` + deadSQL + ` OR ` + outranksSQL + ` THEN n.reply_code ELSE s.reply_code END,
				diagnostic = CASE WHEN ` + deadSQL + ` OR ` + outranksSQL + ` THEN n.diagnostic ELSE s.diagnostic END,
				source = CASE WHEN ` + deadSQL + ` THEN n.source ELSE s.source END,
				provider = CASE WHEN ` + deadSQL + ` THEN n.provider ELSE s.provider END,
				event_count = CASE WHEN ` + deadSQL + ` THEN 1 ELSE s.event_count + 1 END,
				first_seen_at = CASE WHEN ` + deadSQL + ` THEN n.first_seen_at ELSE least(s.first_seen_at, n.first_seen_at) END,
				last_seen_at = CASE WHEN ` + deadSQL + ` THEN n.last_seen_at ELSE greatest(s.last_seen_at, n.last_seen_at) END,
				first_event_id = CASE WHEN ` + deadSQL + ` THEN n.first_event_id ELSE s.first_event_id END,
				last_event_id = n.last_event_id,
				expires_at = ` + newExpirySQL + `,
				created_by = CASE WHEN ` + deadSQL + ` THEN n.created_by ELSE s.created_by END,
				note = CASE WHEN ` + deadSQL + ` THEN n.note ELSE s.note END,
				created_at = CASE WHEN ` + deadSQL + ` THEN n.created_at ELSE s.created_at END,
				state_event_id = CASE WHEN ` + deadSQL + `
					OR (` + outranksSQL + ` AND (n.reason <> s.reason OR n.class <> s.class))
					OR s.expires_at IS DISTINCT FROM ` + newExpirySQL + `
					THEN n.state_event_id ELSE s.state_event_id END`

// keyIs compares the address key of suppressions s with an expression,
// byte-wise: so the lookup reads the unique index suppressions_key, which
// is in the "C" collation whatever the database's.
func keyIs(expr string) string { return `s.address_key COLLATE "C" = ` + expr }

// activeSQL keeps entries that still suppress at $now.
const activeSQL = `(expires_at IS NULL OR expires_at > %s)`

// GetSuppression is the single check: the entry that suppresses email in
// scope, looking at scope and every scope above it (see VisibleScopes),
// most specific first. Entries past their expiry do not suppress.
// ErrNotFound means the address may be mailed. Answers come from an
// in-process cache while change notifications are being received.
func (db *DB) GetSuppression(ctx context.Context, email, scope string) (Suppression, error) {
	if scope == "" {
		scope = GlobalScope
	}
	entries, err := db.entriesOf(ctx, parse.AddressKey(email))
	if err != nil {
		return Suppression{}, err
	}
	now := db.now()
	for _, sc := range VisibleScopes(scope) {
		for _, e := range entries {
			if e.Scope == sc && (e.ExpiresAt == nil || e.ExpiresAt.After(now)) {
				return e, nil
			}
		}
	}
	return Suppression{}, ErrNotFound
}

// entriesOf returns every entry of an address, in all scopes, expired or
// not (expiry is applied by the caller against its clock).
func (db *DB) entriesOf(ctx context.Context, key string) ([]Suppression, error) {
	useCache := db.cache != nil && db.listening.Load()
	var gen uint64
	if useCache {
		if entries, ok := db.cache.get(key); ok {
			db.metrics.cacheHits.Inc()
			return entries, nil
		}
		db.metrics.cacheMisses.Inc()
		gen = db.cache.generation(key)
	}
	var entries []Suppression
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		rows, err := q.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions s WHERE `+keyIs("$1"), key)
		if err != nil {
			return err
		}
		entries, err = pgx.CollectRows(rows, scanSuppression)
		return err
	})
	if err != nil {
		return nil, err
	}
	if useCache {
		db.cache.fill(key, gen, entries)
	}
	return entries, nil
}

// CheckMax is the most addresses one bulk check or add takes.
const CheckMax = 10000

// CheckSuppressions is the bulk check: for each address (normalised) that
// is suppressed in scope or above it, the entry that suppresses it, keyed
// by the address's key (parse.AddressKey).
func (db *DB) CheckSuppressions(ctx context.Context, emails []string, scope string) (map[string]Suppression, error) {
	if scope == "" {
		scope = GlobalScope
	}
	keys := make([]string, len(emails))
	for i, e := range emails {
		keys[i] = parse.AddressKey(e)
	}
	visible := VisibleScopes(scope)
	out := map[string]Suppression{}
	err := db.transact(ctx, func(tx pgx.Tx) error {
		clear(out)
		// The most specific scope wins: DISTINCT ON keeps the first row of
		// each address in scope-rank order.
		rows, err := tx.Query(ctx, `SELECT DISTINCT ON (address_key) `+suppressionColumns+`
			FROM suppressions
			WHERE address_key COLLATE "C" = ANY($1) AND scope = ANY($2) AND `+fmt.Sprintf(activeSQL, "$3")+`
			ORDER BY address_key, array_position($2, scope)`, keys, visible, db.now())
		if err != nil {
			return err
		}
		var s Suppression
		_, err = pgx.ForEachRow(rows, scanDest(&s), func() error {
			out[parse.AddressKey(s.Email)] = s
			return nil
		})
		return err
	})
	return out, err
}

func scanDest(s *Suppression) []any {
	return []any{&s.ID, &s.Email, &s.Scope, &s.Domain, &s.Reason, &s.Class, &s.Status, &s.ReplyCode,
		&s.Diagnostic, &s.Source, &s.Provider, &s.EventCount, &s.FirstSeenAt, &s.LastSeenAt, &s.ExpiresAt,
		&s.CreatedBy, &s.Note, &s.CreatedAt}
}

// SuppressionSort orders a listing.
type SuppressionSort string

// Sort orders; the "-" forms are descending. Rows added while a client
// pages never shift the rows it has not read yet: every order ends with
// the entry's id.
const (
	SortCreatedDesc SuppressionSort = "-created_at" // newest first, the default
	SortCreated     SuppressionSort = "created_at"
	SortEmail       SuppressionSort = "email"
	SortEmailDesc   SuppressionSort = "-email"
)

// Valid reports whether o is a known order.
func (o SuppressionSort) Valid() bool {
	switch o {
	case SortCreatedDesc, SortCreated, SortEmail, SortEmailDesc:
		return true
	}
	return false
}

// SuppressionFilter selects entries for ListSuppressions and friends.
type SuppressionFilter struct {
	Scope       string // exact scope; empty for every scope
	Tenant      string // only this tenant's scopes; empty for no restriction
	OnlyTenant  bool   // restrict to Tenant even when it is empty (untenanted scopes)
	Address     string // exact address (normalised)
	Reason      parse.Reason
	Class       parse.Class
	Source      string
	Domain      string    // lower-case IDNA form
	EmailPrefix string    // compared case-insensitively
	Since       time.Time // created at or after
	Until       time.Time // created before
	Sort        SuppressionSort
	Cursor      string
	Limit       int
}

// Empty reports whether f selects by nothing but paging.
func (f SuppressionFilter) Empty() bool {
	return f.Scope == "" && f.Tenant == "" && !f.OnlyTenant && f.Address == "" && f.Reason == "" && f.Class == "" && f.Source == "" &&
		f.Domain == "" && f.EmailPrefix == "" && f.Since.IsZero() && f.Until.IsZero()
}

// where builds the WHERE clause of f (paging excluded) with args.
func (f SuppressionFilter) where(now time.Time) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	conds = append(conds, fmt.Sprintf(activeSQL, arg(now)))
	if f.Scope != "" {
		conds = append(conds, "scope = "+arg(f.Scope))
	}
	if f.Tenant != "" || f.OnlyTenant {
		conds = append(conds, "tenant = "+arg(f.Tenant))
		if f.Tenant != "" {
			// Says what the partial index suppressions_tenant holds,
			// which a prepared statement's parameter cannot.
			conds = append(conds, "tenant <> ''")
		}
	}
	if f.Address != "" {
		conds = append(conds, `address_key COLLATE "C" = `+arg(parse.AddressKey(f.Address)))
	}
	if f.Reason != "" {
		conds = append(conds, "reason = "+arg(string(f.Reason)))
	}
	if f.Class != "" {
		conds = append(conds, "class = "+arg(string(f.Class)))
	}
	if f.Source != "" {
		conds = append(conds, "source = "+arg(f.Source))
	}
	if f.Domain != "" {
		conds = append(conds, "domain = "+arg(parse.AddressKey(f.Domain)))
	}
	if f.EmailPrefix != "" {
		p := parse.AddressKey(f.EmailPrefix)
		conds = append(conds, `address_key COLLATE "C" >= `+arg(p)+` AND address_key COLLATE "C" < `+arg(p+"\U0010FFFF"))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "created_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "created_at < "+arg(f.Until))
	}
	return strings.Join(conds, " AND "), args
}

// listQuery builds the page query of f.
func (f SuppressionFilter) listQuery(now time.Time, limit int) (string, []any, error) {
	where, args := f.where(now)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	sort := f.Sort
	if sort == "" {
		sort = SortCreatedDesc
	}
	var order string
	switch sort {
	case SortCreatedDesc:
		order = "id DESC"
	case SortCreated:
		order = "id"
	case SortEmail:
		order = `address_key COLLATE "C", id`
	case SortEmailDesc:
		order = `address_key COLLATE "C" DESC, id DESC`
	default:
		return "", nil, fmt.Errorf("%w: unknown sort %q", ErrBadFilter, sort)
	}
	if f.Cursor != "" {
		c, err := decodeSortCursor(f.Cursor, string(sort))
		if err != nil {
			return "", nil, err
		}
		switch sort {
		case SortCreatedDesc:
			where += " AND id < " + arg(c.id)
		case SortCreated:
			where += " AND id > " + arg(c.id)
		case SortEmail:
			where += ` AND (address_key COLLATE "C", id) > (` + arg(c.key) + `, ` + arg(c.id) + `)`
		case SortEmailDesc:
			where += ` AND (address_key COLLATE "C", id) < (` + arg(c.key) + `, ` + arg(c.id) + `)`
		}
	}
	q := `SELECT ` + suppressionColumns + `, address_key FROM suppressions WHERE ` + where +
		` ORDER BY ` + order + ` LIMIT ` + arg(limit)
	return q, args, nil
}

// ErrBadFilter means a listing filter is malformed.
var ErrBadFilter = errors.New("store: bad filter")

// ListSuppressions returns one page of active entries matching f and the
// cursor of the next page ("" when this is the last).
func (db *DB) ListSuppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, string, error) {
	limit := clampLimit(f.Limit)
	q, args, err := f.listQuery(db.now(), limit+1)
	if err != nil {
		return nil, "", err
	}
	var out []Suppression
	var keys []string
	err = db.transact(ctx, func(tx pgx.Tx) error {
		out, keys = out[:0], keys[:0]
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		var s Suppression
		var key string
		_, err = pgx.ForEachRow(rows, append(scanDest(&s), &key), func() error {
			out = append(out, s)
			keys = append(keys, key)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		sort := f.Sort
		if sort == "" {
			sort = SortCreatedDesc
		}
		next = encodeSortCursor(string(sort), keys[limit-1], out[limit-1].ID)
	}
	return out, next, nil
}

// EachSuppression calls fn with every active entry matching f, in f's
// order, reading a page at a time so memory stays constant however many
// match. f's Cursor and Limit are ignored.
func (db *DB) EachSuppression(ctx context.Context, f SuppressionFilter, fn func(Suppression) error) error {
	f.Cursor, f.Limit = "", LimitMax
	for {
		page, next, err := db.ListSuppressions(ctx, f)
		if err != nil {
			return err
		}
		for _, s := range page {
			if err := fn(s); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}

// DeleteSuppression takes email off scope's list (the exact scope), records
// who did it and why as a suppression_removed event, and resets the
// recipient's soft counter so the address starts afresh. ErrNotFound if it
// was not listed (or its entry had expired).
func (db *DB) DeleteSuppression(ctx context.Context, email, scope, actor, note string) (Suppression, error) {
	if scope == "" {
		scope = GlobalScope
	}
	var s Suppression
	err := db.transact(ctx, func(tx pgx.Tx) error {
		now := db.now()
		rows, err := tx.Query(ctx, `DELETE FROM suppressions s WHERE `+keyIs("$1")+` AND scope = $2 AND `+
			fmt.Sprintf(activeSQL, "$3")+` RETURNING `+suppressionColumns, parse.AddressKey(email), scope, now)
		if err != nil {
			return err
		}
		if s, err = pgx.CollectExactlyOneRow(rows, scanSuppression); err != nil {
			return err
		}
		return removed(ctx, tx, []removal{{s.Email, s.Scope, string(s.Reason), string(s.Class), s.Status, s.ReplyCode}},
			actor, note, now)
	})
	if err != nil {
		return Suppression{}, err
	}
	db.invalidate(parse.AddressKey(s.Email))
	db.metrics.countRemoved(string(s.Reason), s.Scope, 1)
	return s, nil
}

// removal is an entry taken off its list.
type removal struct {
	email, scope, reason, class, status, replyCode string
}

// removed records the removal of entries as suppression_removed events
// and changes (delivered to the subscriptions that want them), resets the
// soft counters of their addresses in their tenants, and notifies the
// caches.
func removed(ctx context.Context, tx pgx.Tx, entries []removal, actor, note string, now time.Time) error {
	n := len(entries)
	emails, keys, domains, scopes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	reasons, classes, statuses, replies := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, e := range entries {
		emails[i], keys[i], domains[i], scopes[i] = e.email, parse.AddressKey(e.email), parse.AddressDomain(e.email), e.scope
		reasons[i], classes[i], statuses[i], replies[i] = e.reason, e.class, e.status, e.replyCode
	}
	if _, err := tx.Exec(ctx, `
		WITH t AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $10::text[], $11::text[])
				AS t(a, k, d, sc, r, st, cl, rc)
		), ev AS (
			INSERT INTO events (address, address_key, type, class, reason, status, source, scope, actor, note, occurred_at)
			SELECT a, k, 'suppression_removed', 'none', r, st, 'api', sc, $7, $8, $9 FROM t
		), removal AS (
			SELECT 'suppression_removed' AS type, sc AS scope, a AS address, r AS reason, cl AS class, st AS status,
				rc AS reply_code, 'api' AS source, '' AS provider, NULL::bigint AS event_id, $7 AS actor, $8 AS note,
				NULL::timestamptz AS expires_at, $9::timestamptz AS occurred_at, false AS adds_suppression
			FROM t
		), `+changesSQL("removal", "$9")+`
		SELECT 1`,
		emails, keys, domains, scopes, reasons, statuses, actor, clip(note, 1000), now, classes, replies); err != nil {
		return fmt.Errorf("record removal: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		WITH t AS (SELECT DISTINCT bounced_scope_tenant(sc) AS tenant, k FROM unnest($1::text[], $2::text[]) AS u(k, sc)),
		cleared AS (DELETE FROM soft_failures f USING t WHERE f.tenant = t.tenant AND f.address_key = t.k)
		UPDATE recipients r SET soft_count = 0, soft_first_at = NULL, reset_at = $3, updated_at = now()
		FROM t WHERE r.tenant = t.tenant AND r.address_key = t.k`, keys, scopes, now); err != nil {
		return fmt.Errorf("reset counters: %w", err)
	}
	return notifyKeys(ctx, tx, keys)
}

// notifyKeys tells every replica's cache that these addresses changed;
// past a few thousand it asks for a full flush instead.
func notifyKeys(ctx context.Context, tx pgx.Tx, keys []string) error {
	if len(keys) > notifyFlushOver {
		_, err := tx.Exec(ctx, `SELECT pg_notify('`+channelSuppressions+`', '`+flushPayload+`')`)
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify('`+channelSuppressions+`', k) FROM unnest($1::text[]) AS k`, keys)
	return err
}

// notifyFlushOver is the count of changed addresses past which a single
// "flush everything" notification replaces one per address.
const notifyFlushOver = 1000

// invalidate drops addresses from this process's cache at once, so a
// client reads its own writes without waiting for the notification.
func (db *DB) invalidate(keys ...string) {
	if db.cache == nil {
		return
	}
	if len(keys) > notifyFlushOver {
		db.cache.flush()
		return
	}
	for _, k := range keys {
		db.cache.invalidate(k)
	}
}

// DeleteSuppressions removes every active entry matching f, recording each
// removal like DeleteSuppression, and returns how many it removed. f must
// select by something (ErrBadFilter otherwise).
func (db *DB) DeleteSuppressions(ctx context.Context, f SuppressionFilter, actor, note string) (int, error) {
	if f.Empty() {
		return 0, fmt.Errorf("%w: a bulk delete needs at least one filter", ErrBadFilter)
	}
	where, args := f.where(db.now())
	now := db.now()
	var keys []string
	var byReason map[[2]string]int // reason, scope
	err := db.transact(ctx, func(tx pgx.Tx) error {
		byReason = map[[2]string]int{}
		rows, err := tx.Query(ctx, `DELETE FROM suppressions WHERE `+where+` RETURNING address, scope, reason, class, status, reply_code`, args...)
		if err != nil {
			return err
		}
		var entries []removal
		var r removal
		if _, err := pgx.ForEachRow(rows, []any{&r.email, &r.scope, &r.reason, &r.class, &r.status, &r.replyCode}, func() error {
			entries = append(entries, r)
			byReason[[2]string{r.reason, r.scope}]++
			return nil
		}); err != nil {
			return err
		}
		keys = make([]string, len(entries))
		for i, e := range entries {
			keys[i] = parse.AddressKey(e.email)
		}
		if len(entries) == 0 {
			return nil
		}
		return removed(ctx, tx, entries, actor, note, now)
	})
	if err != nil {
		return 0, err
	}
	db.invalidate(keys...)
	for k, n := range byReason {
		db.metrics.countRemoved(k[0], k[1], n)
	}
	return len(keys), nil
}

// CountSuppressions counts the active entries matching f.
func (db *DB) CountSuppressions(ctx context.Context, f SuppressionFilter) (int, error) {
	where, args := f.where(db.now())
	var n int
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM suppressions WHERE `+where, args...).Scan(&n)
	})
	return n, err
}

// NewSuppression is an address to add by hand.
type NewSuppression struct {
	Email     string // normalised
	Scope     string // validated; "" for global
	Reason    parse.Reason
	Note      string
	ExpiresAt *time.Time
}

// AddResult is what adding did to one address.
type AddResult struct {
	Suppression Suppression
	Added       bool // false: the address was already suppressed in that scope
}

// AddSuppressions puts addresses on lists by hand (reason manual,
// unsubscribe or import) in one transaction. An address already
// suppressed in that scope is left as it is and reported as not added; an
// expired entry is replaced. Each added address gets a suppression_added
// event naming actor. Duplicates (same scope and address) count once.
func (db *DB) AddSuppressions(ctx context.Context, items []NewSuppression, actor, source string) ([]AddResult, error) {
	type pair struct{ scope, key string }
	seen := map[pair]int{}
	var addrs, keys, domains, scopes, reasons, notes []string
	var expires []*time.Time
	order := make([]int, len(items))
	for i, it := range items {
		if !ManualReason(it.Reason) {
			return nil, fmt.Errorf("%w: reason %q is not manual, unsubscribe or import", ErrBadFilter, it.Reason)
		}
		scope := it.Scope
		if scope == "" {
			scope = GlobalScope
		}
		p := pair{scope, parse.AddressKey(it.Email)}
		if j, ok := seen[p]; ok {
			order[i] = j
			continue
		}
		seen[p] = len(addrs)
		order[i] = len(addrs)
		addrs, keys, domains = append(addrs, it.Email), append(keys, p.key), append(domains, parse.AddressDomain(it.Email))
		scopes, reasons, notes = append(scopes, scope), append(reasons, string(it.Reason)), append(notes, clip(it.Note, 1000))
		expires = append(expires, it.ExpiresAt)
	}
	now := db.now()
	results := make([]AddResult, len(addrs))
	err := db.transact(ctx, func(tx pgx.Tx) error {
		added, err := upsertManual(ctx, tx, addrs, keys, domains, scopes, reasons, notes, expires, actor, source, now)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+suppressionColumns+`, u.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(sc, k, i)
			JOIN suppressions s ON s.scope = u.sc AND `+keyIs("u.k"), scopes, keys)
		if err != nil {
			return err
		}
		var s Suppression
		var i int64
		_, err = pgx.ForEachRow(rows, append(scanDest(&s), &i), func() error {
			results[i-1] = AddResult{Suppression: s, Added: added[s.ID]}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	db.invalidate(keys...)
	out := make([]AddResult, len(items))
	for i := range items {
		out[i] = results[order[i]]
	}
	for _, r := range results {
		if r.Added {
			db.metrics.countAdded(string(r.Suppression.Reason), r.Suppression.Scope, 1)
		}
	}
	return out, nil
}

// upsertManual inserts manual entries (no duplicates among them), replaces
// expired ones, leaves active ones alone, records a suppression_added event
// per added entry and notifies the caches. It returns the ids added.
func upsertManual(ctx context.Context, tx pgx.Tx, addrs, keys, domains, scopes, reasons, notes []string, expires []*time.Time,
	actor, source string, now time.Time) (map[int64]bool, error) {
	rows, err := tx.Query(ctx, `
		WITH src AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
				AS t(address, address_key, domain, scope, reason, note, expires_at)
		), `+manualUpsertSQL("$8", "$9", "$10")+`
		SELECT id, address_key, pg_notify('`+channelSuppressions+`', address_key)::text FROM up`,
		addrs, keys, domains, scopes, reasons, notes, expires, source, now, actor)
	if err != nil {
		return nil, err
	}
	added := map[int64]bool{}
	var id int64
	var key, ignored string
	_, err = pgx.ForEachRow(rows, []any{&id, &key, &ignored}, func() error {
		added[id] = true
		return nil
	})
	return added, err
}

// manualUpsertSQL is how entries are added by hand (AddSuppressions) and
// imported (ImportSuppressions): the CTEs "up", the entries added from
// "src" (address, address_key, domain, scope, reason, note, expires_at;
// one row per scope and address), "ev", their suppression_added
// events, and their changes and deliveries (changesSQL). A new address is inserted and an expired entry replaced whole;
// an active entry is left as it is, whatever its reason. source, now and
// actor are the SQL expressions (parameters) of the source, the time and
// who did it.
func manualUpsertSQL(source, now, actor string) string {
	return `up AS (
			INSERT INTO suppressions AS s (scope, address, address_key, domain, reason, class, source, first_seen_at,
				last_seen_at, expires_at, created_by, note, created_at)
			SELECT scope, address, address_key, domain, reason, 'none', ` + source + `, ` + now + `, ` + now + `, expires_at, ` +
		actor + `, note, ` + now + `
			FROM src
			ON CONFLICT (address_key COLLATE "C", scope) DO UPDATE SET
				reason = EXCLUDED.reason, class = EXCLUDED.class, status = '', reply_code = '', diagnostic = '',
				source = EXCLUDED.source, provider = '', first_event_id = NULL, last_event_id = NULL,
				event_count = 1, first_seen_at = EXCLUDED.first_seen_at, last_seen_at = EXCLUDED.last_seen_at,
				expires_at = EXCLUDED.expires_at, created_by = EXCLUDED.created_by, note = EXCLUDED.note,
				created_at = EXCLUDED.created_at
			WHERE s.expires_at IS NOT NULL AND s.expires_at <= ` + now + `
			RETURNING id, address, address_key, domain, scope, reason, note, expires_at
		), ev AS (
			INSERT INTO events (address, address_key, type, class, reason, source, scope, actor, note, occurred_at)
			SELECT address, address_key, 'suppression_added', 'none', reason, ` + source + `, scope, ` + actor + `, note, ` + now + `
			FROM up
		), addition AS (
			SELECT 'suppression_added' AS type, scope, address, reason, 'none' AS class, '' AS status, '' AS reply_code,
				` + source + `::text AS source, '' AS provider, NULL::bigint AS event_id, ` + actor + `::text AS actor, note,
				expires_at, ` + now + `::timestamptz AS occurred_at, false AS adds_suppression
			FROM up
		), ` + changesSQL("addition", now)
}

// countActive counts active entries by reason and scope kind.
func (db *DB) countActive(ctx context.Context) ([]activeCount, error) {
	byKey := map[[2]string]float64{}
	err := db.transact(ctx, func(tx pgx.Tx) error {
		clear(byKey)
		rows, err := tx.Query(ctx, `SELECT reason, scope, count(*) FROM suppressions
			WHERE `+fmt.Sprintf(activeSQL, "$1")+` GROUP BY reason, scope`, db.now())
		if err != nil {
			return err
		}
		var reason, scope string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&reason, &scope, &n}, func() error {
			if !ValidSuppressionReason(parse.Reason(reason)) {
				reason = string(parse.ReasonOther) // labels stay bounded whatever was stored
			}
			byKey[[2]string{reason, string(KindOf(scope))}] += float64(n)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]activeCount, 0, len(byKey))
	for k, n := range byKey {
		out = append(out, activeCount{reason: k[0], kind: k[1], n: n})
	}
	return out, nil
}

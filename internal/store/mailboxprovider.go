package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/mailboxprovider"
	"github.com/bounced/bounced/internal/parse"
)

// mailboxProviderRefresh is how old a stored answer may grow before the
// same answer is written again (its resolved_at).
const mailboxProviderRefresh = "7 days"

// SaveMailboxProvider stores the mailbox provider an MX lookup found for
// a recipient domain, for stats by mailbox provider. A stored answer that
// is the same and younger than a week is left as it is (no write). p must
// be a provider of the table or Other: Unknown, a failed lookup, is not
// an answer.
func (db *DB) SaveMailboxProvider(ctx context.Context, domain string, p mailboxprovider.Provider) error {
	if !p.Valid() || p == mailboxprovider.Unknown || domain == "" || len(domain) > 255 {
		return fmt.Errorf("store: save mailbox provider: %q for %q is not an answer", p, domain)
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO mailbox_domains AS m (domain, mailbox_provider, resolved_at) VALUES ($1, $2, $3)
			ON CONFLICT (domain) DO UPDATE SET mailbox_provider = EXCLUDED.mailbox_provider, resolved_at = EXCLUDED.resolved_at
			WHERE m.mailbox_provider <> EXCLUDED.mailbox_provider OR m.resolved_at < EXCLUDED.resolved_at - interval '`+mailboxProviderRefresh+`'`,
			domain, string(p), db.now())
		return err
	})
}

// mailboxProviderOf is the mailbox provider label of an event's
// recipient, from Options.MailboxProviderFunc (never waiting for a
// lookup), else the built-in table.
func (db *DB) mailboxProviderOf(address string) string {
	domain := parse.AddressDomain(address)
	var p mailboxprovider.Provider
	if db.mailboxProvider != nil {
		p = db.mailboxProvider(domain)
	} else if known, ok := mailboxprovider.ForDomain(domain); ok {
		p = known
	} else {
		p = db.mailboxFallback()
	}
	if !p.Valid() {
		p = mailboxprovider.Unknown
	}
	return string(p)
}

// mailboxFallback is the provider of a domain neither the table nor a
// stored lookup places: Unknown while lookups run (its lookup failed or
// has not happened yet), else Other.
func (db *DB) mailboxFallback() mailboxprovider.Provider {
	if db.mailboxProvider != nil {
		return mailboxprovider.Unknown
	}
	return mailboxprovider.Other
}

// byMailboxProvider wraps a query whose first two columns are a bucket
// and a recipient domain, followed by counts, to sum the counts by the
// domain's mailbox provider instead: the built-in table first, then the
// stored lookups, else the fallback. It adds its arguments to args.
func (db *DB) byMailboxProvider(inner string, counts int, args []any) (string, []any) {
	domains, providers := mailboxprovider.TableDomains()
	names := make([]string, len(providers))
	for i, p := range providers {
		names[i] = string(p)
	}
	n := len(args)
	args = append(args, string(db.mailboxFallback()), domains, names)
	cols, sums := "", ""
	for i := range counts {
		cols += fmt.Sprintf(", c%d", i)
		sums += fmt.Sprintf(", sum(c%d)::bigint", i)
	}
	return fmt.Sprintf(`
		SELECT b, coalesce(t.p, m.mailbox_provider, $%d)`+sums+`
		FROM (`+inner+`) AS e (b, d`+cols+`)
		LEFT JOIN unnest($%d::text[], $%d::text[]) AS t (d, p) ON t.d = e.d
		LEFT JOIN mailbox_domains m ON m.domain = e.d AND t.d IS NULL
		GROUP BY 1, 2`, n+1, n+2, n+3), args
}

// MailboxDomain is a stored answer: a recipient domain's mailbox
// provider and when it was looked up.
type MailboxDomain struct {
	Domain     string
	Provider   mailboxprovider.Provider
	ResolvedAt time.Time
}

// MailboxProviders returns at most limit stored answers, the most
// recently looked up first, to fill a resolver's cache at start.
func (db *DB) MailboxProviders(ctx context.Context, limit int) ([]MailboxDomain, error) {
	var out []MailboxDomain
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT domain, mailbox_provider, resolved_at FROM mailbox_domains ORDER BY resolved_at DESC LIMIT $1`, max(limit, 0))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (MailboxDomain, error) {
			var m MailboxDomain
			err := row.Scan(&m.Domain, &m.Provider, &m.ResolvedAt)
			return m, err
		})
		return err
	})
	return out, err
}

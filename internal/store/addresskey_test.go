package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
	"github.com/bounced/bounced/migrations"
)

// TestAddressKeyMigration runs migration 00010 over rows keyed the old
// way (Unicode lower case): the Kelvin-sign address stops keying kate,
// and ASCII keys stay as they were.
func TestAddressKeyMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	kelvin := "\u212Aate@example.com"
	for _, q := range []string{
		`INSERT INTO suppressions (address, address_key, domain, reason, class, source, first_seen_at, last_seen_at)
			VALUES ('` + kelvin + `', 'kate@example.com', 'example.com', 'user_unknown', 'hard', 'http', now(), now()),
			('Joe@example.com', 'joe@example.com', 'example.com', 'user_unknown', 'hard', 'http', now(), now())`,
		`INSERT INTO recipients (tenant, address_key, address) VALUES ('', 'kate@example.com', '` + kelvin + `')`,
		`INSERT INTO events (address, address_key, type, class, reason, source, occurred_at)
			VALUES ('` + kelvin + `', 'kate@example.com', 'bounce', 'soft', 'mailbox_full', 'http', now())`,
		`INSERT INTO soft_failures (tenant, address_key, day, message_key, event_id, reason, occurred_at)
			SELECT '', 'kate@example.com', current_date, '', id, 'mailbox_full', now() FROM events`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	up, err := migrations.FS.ReadFile("00010_address_keys.sql")
	if err != nil {
		t.Fatal(err)
	}
	stmts, _, _ := strings.Cut(string(up), "-- +goose Down")
	if _, err := conn.Exec(ctx, stmts); err != nil {
		t.Fatalf("migration 00010: %v", err)
	}
	want := parse.AddressKey(kelvin)
	for _, q := range []string{
		`SELECT address_key FROM suppressions WHERE address = '` + kelvin + `'`,
		`SELECT address_key FROM recipients WHERE address = '` + kelvin + `'`,
		`SELECT address_key FROM events WHERE address = '` + kelvin + `'`,
		`SELECT address_key FROM soft_failures`,
	} {
		var got string
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v, want %q", q, got, err, want)
		}
	}
	var joe string
	if err := conn.QueryRow(ctx, `SELECT address_key FROM suppressions WHERE address = 'Joe@example.com'`).Scan(&joe); err != nil || joe != "joe@example.com" {
		t.Errorf("ASCII key after migration = %q, %v, want joe@example.com", joe, err)
	}
	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.GetSuppression(ctx, "kate@example.com", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSuppression(kate) after migration = %v, want ErrNotFound", err)
	}
	if _, err := db.GetSuppression(ctx, kelvin, ""); err != nil {
		t.Errorf("GetSuppression(%q) after migration: %v", kelvin, err)
	}
}

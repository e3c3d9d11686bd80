package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/store"
)

func TestMailboxLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	const ttl = 700 * time.Millisecond

	if err := db.AcquireLease(ctx, "bounces", "a", ttl); err != nil {
		t.Fatalf("AcquireLease(a) on a free mailbox = %v", err)
	}
	if err := db.AcquireLease(ctx, "bounces", "b", ttl); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("AcquireLease(b) while a holds it = %v, want ErrLeaseLost", err)
	}
	if err := db.AcquireLease(ctx, "other", "b", ttl); err != nil {
		t.Fatalf("AcquireLease(b) on another mailbox = %v", err)
	}
	if err := db.AcquireLease(ctx, "bounces", "a", ttl); err != nil {
		t.Fatalf("renewing a's lease = %v", err)
	}
	if holder, _, err := db.LeaseHolder(ctx, "bounces"); err != nil || holder != "a" {
		t.Fatalf("LeaseHolder = %q, %v; want a", holder, err)
	}

	// a dies without releasing: b takes over once the lease runs out.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.AcquireLease(ctx, "bounces", "b", ttl)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrLeaseLost) || time.Now().After(deadline) {
			t.Fatalf("b never took over the expired lease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// a's late checkpoint is refused: it is no longer the holder.
	if err := db.SaveCheckpoint(ctx, "bounces", "a", store.Checkpoint{Identity: "x", UIDValidity: 1, LastUID: 9}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("SaveCheckpoint by the old holder = %v, want ErrLeaseLost", err)
	}
	// Releasing frees it at once; releasing what one does not hold is a no-op.
	if err := db.ReleaseLease(ctx, "bounces", "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.AcquireLease(ctx, "bounces", "a", ttl); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a's release removed b's lease: %v", err)
	}
	if err := db.ReleaseLease(ctx, "bounces", "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.LeaseHolder(ctx, "bounces"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LeaseHolder after release = %v, want ErrNotFound", err)
	}
	if err := db.AcquireLease(ctx, "bounces", "a", ttl); err != nil {
		t.Errorf("AcquireLease after release = %v", err)
	}
}

func TestMailboxCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	if _, err := db.GetCheckpoint(ctx, "bounces"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCheckpoint before any = %v, want ErrNotFound", err)
	}
	if err := db.AcquireLease(ctx, "bounces", "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		save store.Checkpoint
		want store.Checkpoint
	}{
		{"first", store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 10}, store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 10}},
		{"advances", store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 15}, store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 15}},
		{"never moves back", store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 3}, store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 7, LastUID: 15}},
		{"new uidvalidity starts over", store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 8, LastUID: 2}, store.Checkpoint{Identity: "imap://h/INBOX", UIDValidity: 8, LastUID: 2}},
		{"new identity starts over", store.Checkpoint{Identity: "imap://g/INBOX", UIDValidity: 8, LastUID: 1}, store.Checkpoint{Identity: "imap://g/INBOX", UIDValidity: 8, LastUID: 1}},
		{"large uids", store.Checkpoint{Identity: "imap://g/INBOX", UIDValidity: 4294967295, LastUID: 4294967290}, store.Checkpoint{Identity: "imap://g/INBOX", UIDValidity: 4294967295, LastUID: 4294967290}},
	}
	for _, s := range steps {
		if err := db.SaveCheckpoint(ctx, "bounces", "me", s.save); err != nil {
			t.Fatalf("%s: SaveCheckpoint = %v", s.name, err)
		}
		got, err := db.GetCheckpoint(ctx, "bounces")
		if err != nil {
			t.Fatalf("%s: GetCheckpoint = %v", s.name, err)
		}
		if got.Identity != s.want.Identity || got.UIDValidity != s.want.UIDValidity || got.LastUID != s.want.LastUID {
			t.Errorf("%s: checkpoint = %+v, want %+v", s.name, got, s.want)
		}
	}
	if err := db.SaveCheckpoint(ctx, "bounces", "stranger", store.Checkpoint{Identity: "x", UIDValidity: 1, LastUID: 1}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("SaveCheckpoint without the lease = %v, want ErrLeaseLost", err)
	}
}

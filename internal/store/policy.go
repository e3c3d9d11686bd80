package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// Reasons of entries put on the list by people rather than by bounces.
const (
	ReasonManual      parse.Reason = "manual"
	ReasonUnsubscribe parse.Reason = "unsubscribe"
	ReasonImport      parse.Reason = "import"
)

// ManualReason reports whether r is one of the reasons of manual adds.
func ManualReason(r parse.Reason) bool {
	return r == ReasonManual || r == ReasonUnsubscribe || r == ReasonImport
}

// ComplaintScope says where a complaint suppresses.
type ComplaintScope string

// Complaint scopes.
const (
	// ComplaintGlobal suppresses in the root scope of the event: global,
	// or its tenant's own list.
	ComplaintGlobal ComplaintScope = "global"
	// ComplaintList suppresses only in the event's own scope (the list the
	// message was sent to), like an unsubscribe.
	ComplaintList ComplaintScope = "list"
)

// Policy defaults.
const (
	SoftThresholdDefault  = 3
	SoftWindowDaysDefault = 14
	SoftExpiryDaysDefault = 30
)

// ReasonRule overrides the policy for one reason. Nil fields keep the
// class default.
type ReasonRule struct {
	// Threshold is how many counted failures within the window suppress;
	// 1 suppresses at once. A hard reason with a threshold above 1 is
	// counted like a soft one.
	Threshold *int `json:"threshold,omitempty"`
	// ExpiryDays is how long the suppression lasts; 0 means for ever.
	ExpiryDays *int `json:"expiry_days,omitempty"`
	// Suppress false records and counts the failures but never suppresses.
	Suppress *bool `json:"suppress,omitempty"`
}

// Policy is the suppression policy.
type Policy struct {
	// SoftThreshold soft failures within SoftWindowDays suppress.
	SoftThreshold  int `json:"soft_threshold"`
	SoftWindowDays int `json:"soft_window_days"`
	// Expiry of suppressions by class of the failure; 0 means never.
	SoftExpiryDays      int            `json:"soft_expiry_days"`
	HardExpiryDays      int            `json:"hard_expiry_days"`
	ComplaintExpiryDays int            `json:"complaint_expiry_days"`
	ComplaintScope      ComplaintScope `json:"complaint_scope"`
	// Reasons holds per-reason overrides.
	Reasons map[parse.Reason]ReasonRule `json:"reasons"`

	Version int64 `json:"version"`
	// UpdatedAt is nil while the defaults have never been changed.
	UpdatedAt *time.Time `json:"updated_at"`
	UpdatedBy string     `json:"updated_by"`
}

func intp(n int) *int { return &n }

// DefaultPolicy is the policy until one is stored: 3 soft failures in 14
// days, soft suppressions expire after 30 days, hard ones and complaints
// never; a disabled mailbox suppresses after 2, a full one after 5.
func DefaultPolicy() Policy {
	return Policy{
		SoftThreshold:  SoftThresholdDefault,
		SoftWindowDays: SoftWindowDaysDefault,
		SoftExpiryDays: SoftExpiryDaysDefault,
		ComplaintScope: ComplaintGlobal,
		Reasons: map[parse.Reason]ReasonRule{
			parse.ReasonMailboxDisabled: {Threshold: intp(2)},
			parse.ReasonMailboxFull:     {Threshold: intp(5)},
		},
	}
}

// PolicyError says which field of a policy is wrong.
type PolicyError struct {
	Field  string
	Detail string
}

func (e *PolicyError) Error() string { return "store: policy: " + e.Field + ": " + e.Detail }

// Validate checks every field.
func (p Policy) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &PolicyError{Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case p.SoftThreshold < 1 || p.SoftThreshold > 100:
		return bad("soft_threshold", "must be 1 to 100")
	case p.SoftWindowDays < 1 || p.SoftWindowDays > 365:
		return bad("soft_window_days", "must be 1 to 365")
	case p.SoftExpiryDays < 0 || p.SoftExpiryDays > 3650:
		return bad("soft_expiry_days", "must be 0 (never) to 3650")
	case p.HardExpiryDays < 0 || p.HardExpiryDays > 3650:
		return bad("hard_expiry_days", "must be 0 (never) to 3650")
	case p.ComplaintExpiryDays < 0 || p.ComplaintExpiryDays > 3650:
		return bad("complaint_expiry_days", "must be 0 (never) to 3650")
	case p.ComplaintScope != ComplaintGlobal && p.ComplaintScope != ComplaintList:
		return bad("complaint_scope", "must be global or list")
	}
	for r, rule := range p.Reasons {
		field := "reasons." + string(r)
		switch {
		case !r.Valid():
			return bad(field, "unknown reason")
		case r.Class() == parse.ClassSender:
			return bad(field, "sender-side errors never suppress and cannot be overridden")
		case r == parse.ReasonComplaint || r == parse.ReasonAutoReply || r == parse.ReasonDelivered || r == parse.ReasonDelayed:
			return bad(field, "only bounce reasons can be overridden")
		case rule.Threshold != nil && (*rule.Threshold < 1 || *rule.Threshold > 100):
			return bad(field+".threshold", "must be 1 to 100")
		case rule.ExpiryDays != nil && (*rule.ExpiryDays < 0 || *rule.ExpiryDays > 3650):
			return bad(field+".expiry_days", "must be 0 (never) to 3650")
		}
	}
	return nil
}

// withDefaults fills zero fields of a stored or submitted document.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.SoftThreshold == 0 {
		p.SoftThreshold = d.SoftThreshold
	}
	if p.SoftWindowDays == 0 {
		p.SoftWindowDays = d.SoftWindowDays
	}
	if p.ComplaintScope == "" {
		p.ComplaintScope = d.ComplaintScope
	}
	if p.Reasons == nil {
		p.Reasons = map[parse.Reason]ReasonRule{}
	}
	return p
}

// decision is what the policy says about one failure.
type decision struct {
	counts    bool // goes into the soft window
	threshold int  // counted failures that suppress
	suppress  bool // false: never suppresses
	expiry    int  // days; 0 never
}

// decide applies the policy to an event. Only bounces and complaints can
// suppress; sender-side errors, delays, auto-replies, deliveries and
// unverified events never count.
func (p *Policy) decide(ev parse.Event) decision {
	if ev.Unverified {
		return decision{} // recorded, never counted towards suppressing
	}
	if ev.Type == parse.EventComplaint {
		return decision{threshold: 1, suppress: true, expiry: p.ComplaintExpiryDays}
	}
	if ev.Type != parse.EventBounce || (ev.Class != parse.ClassHard && ev.Class != parse.ClassSoft) {
		return decision{}
	}
	d := decision{threshold: 1, suppress: true, expiry: p.HardExpiryDays}
	if ev.Class == parse.ClassSoft {
		d = decision{counts: true, threshold: p.SoftThreshold, suppress: true, expiry: p.SoftExpiryDays}
	}
	if rule, ok := p.Reasons[ev.Reason]; ok {
		if rule.Threshold != nil {
			d.threshold = *rule.Threshold
			d.counts = d.counts || d.threshold > 1
		}
		if rule.ExpiryDays != nil {
			d.expiry = *rule.ExpiryDays
		}
		if rule.Suppress != nil {
			d.suppress = *rule.Suppress
		}
	}
	return d
}

func (p *Policy) window() time.Duration {
	return time.Duration(p.SoftWindowDays) * 24 * time.Hour
}

// policyReloadTTL bounds how stale the cached policy can be while no
// change notifications arrive (no listener running).
const policyReloadTTL = 5 * time.Second

type cachedPolicy struct {
	p        Policy
	loadedAt time.Time
}

// currentPolicy returns the cached policy, loading it through tx when the
// cache is empty or may have missed a change.
func (db *DB) currentPolicy(ctx context.Context, q querier) (*Policy, error) {
	if c := db.policy.Load(); c != nil && (db.listening.Load() || time.Since(c.loadedAt) < policyReloadTTL) {
		return &c.p, nil
	}
	gen := db.policyGen.Load()
	p, err := loadPolicy(ctx, q)
	if err != nil {
		return nil, err
	}
	c := &cachedPolicy{p: p, loadedAt: time.Now()}
	if db.policyGen.Load() == gen {
		db.policy.Store(c)
	}
	return &c.p, nil
}

// querier is what pgx.Tx, pgx.Conn and pgxpool.Pool share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loadPolicy(ctx context.Context, q querier) (Policy, error) {
	var doc []byte
	var p Policy
	var version int64
	var at time.Time
	var by string
	err := q.QueryRow(ctx, `SELECT doc, version, updated_at, updated_by FROM policy WHERE id = 1`).Scan(&doc, &version, &at, &by)
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultPolicy(), nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("load policy: %w", err)
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		return Policy{}, fmt.Errorf("decode policy: %w", err)
	}
	p = p.withDefaults()
	p.Version, p.UpdatedAt, p.UpdatedBy = version, &at, by
	return p, nil
}

// invalidatePolicy drops the cached policy.
func (db *DB) invalidatePolicy() {
	db.policyGen.Add(1)
	db.policy.Store(nil)
}

// GetPolicy returns the policy in force.
func (db *DB) GetPolicy(ctx context.Context) (Policy, error) {
	var p Policy
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = loadPolicy(ctx, tx)
		return err
	})
	return p, err
}

// ErrVersionMismatch means the caller edited an older version of a
// document than the one stored.
var ErrVersionMismatch = errors.New("store: version mismatch")

// PutPolicy replaces the policy. Zero fields take their defaults. p.Version
// must be the stored version, 0 while none was ever stored
// (ErrVersionMismatch otherwise): an edit never overwrites another it did
// not see. It returns *PolicyError for an invalid policy. Every replica
// picks the change up through a notification.
func (db *DB) PutPolicy(ctx context.Context, p Policy, actor string) (Policy, error) {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	for r, rule := range p.Reasons {
		if rule == (ReasonRule{}) {
			delete(p.Reasons, r)
		}
	}
	want := p.Version
	// The version and who changed it live in columns; loadPolicy sets them.
	p.Version, p.UpdatedAt, p.UpdatedBy = 0, nil, ""
	doc, err := json.Marshal(p)
	if err != nil {
		return Policy{}, fmt.Errorf("store: encode policy: %w", err)
	}
	var out Policy
	err = db.transact(ctx, func(tx pgx.Tx) error {
		var cur int64
		err := tx.QueryRow(ctx, `SELECT version FROM policy WHERE id = 1 FOR UPDATE`).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if want != cur {
			return fmt.Errorf("%w: stored policy is at version %d", ErrVersionMismatch, cur)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO policy (id, doc, version, updated_at, updated_by) VALUES (1, $1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, version = EXCLUDED.version,
				updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
			doc, cur+1, db.now(), actor); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify('`+channelPolicy+`', '')`); err != nil {
			return err
		}
		out, err = loadPolicy(ctx, tx)
		return err
	})
	if err != nil {
		return Policy{}, err
	}
	db.invalidatePolicy()
	return out, nil
}

// suppressionReasons lists the reasons an entry can carry.
func suppressionReasons() []parse.Reason {
	return append(slices.Clone(parse.Reasons()), ReasonManual, ReasonUnsubscribe, ReasonImport)
}

// ValidSuppressionReason reports whether r can be the reason of an entry.
func ValidSuppressionReason(r parse.Reason) bool {
	return slices.Contains(suppressionReasons(), r)
}

package store

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// This file plans what recording a batch of inputs writes, without
// touching the database: which inputs store their bytes, which events
// are applied in which order, the statement arguments, and, once the
// database has answered, where events suppress and what each input's
// outcome is. record.go sends the plan in a few round trips.
//
// Events about different addresses never read each other's rows, so they
// can be applied in one statement. Events are split into layers in which
// every address appears once: an address's first event is in layer 0, its
// second in layer 1 and so on, and layers are applied in order, so each
// address sees its events one after another, in input order: a batch
// records exactly what its inputs recorded one by one would.

// plannedEvent is one event of the batch, normalised.
type plannedEvent struct {
	input int // index into the batch
	ev    parse.Event
	scope string
	key   string // parse.AddressKey(ev.Address)
	dec   decision
	rawID int64
	id    int64
	layer int
	// suppressed is where the event suppresses, when it does.
	suppressed suppressed
}

// batchPlan is what one batch writes.
type batchPlan struct {
	ps  []*prepared
	pol *Policy
	// now is the batch's time of receipt, when its policy applies.
	now time.Time
	// writer marks the first input with its bytes: later copies are
	// replays and write nothing.
	writer []bool
	nRaw   int
	events []*plannedEvent
	layers [][]*plannedEvent
	// rawID is each writer's pre-allocated id (see assign).
	rawID []int64
	byID  map[int64]*plannedEvent
}

// planBatch normalises the batch's events (an event without a usable
// address is dropped, an event's own scope wins over its input's, an
// unknown scope is global, a provider event id seen earlier in the batch
// is a replay), decides each under the policy and layers them.
func planBatch(ps []*prepared, pol *Policy) *batchPlan {
	p := &batchPlan{ps: ps, pol: pol, now: ps[0].received, writer: make([]bool, len(ps)), rawID: make([]int64, len(ps))}
	first := map[[32]byte]bool{}
	keys := map[[3]string]bool{}
	for i, in := range ps {
		if first[in.sum] {
			continue
		}
		first[in.sum], p.writer[i] = true, true
		p.nRaw++
		inScope := in.in.Scope
		if inScope == "" || CheckScope(inScope) != nil {
			inScope = GlobalScope
		}
		for _, ev := range in.in.Events {
			// An event attributed to a scope of its own (see
			// parse.Event.Scope) is recorded there.
			scope := inScope
			if ev.Scope != "" && CheckScope(ev.Scope) == nil {
				scope = ev.Scope
			}
			if ev.OccurredAt.IsZero() {
				ev.OccurredAt = in.received
			}
			addr, err := parse.NormalizeAddress(ev.Address)
			if err != nil {
				continue // nothing to key it on; the raw input keeps it
			}
			ev.Address = addr
			if ev.ProviderEventID != "" {
				k := [3]string{in.in.Source, in.in.Provider, ev.ProviderEventID}
				if keys[k] {
					continue
				}
				keys[k] = true
			}
			p.events = append(p.events, &plannedEvent{input: i, ev: ev, scope: scope, key: parse.AddressKey(addr), dec: pol.decide(ev)})
		}
	}
	p.layers = layerEvents(p.events)
	return p
}

// assign gives the writers and events their ids, taken from the
// sequences up front so statements can be queued before earlier ones
// have answered: a later statement learns what an earlier one skipped
// (bytes stored before, an event replayed) by joining on these ids, which
// exist only for rows actually inserted.
func (p *batchPlan) assign(rawIDs, eventIDs []int64) {
	slices.Sort(rawIDs)
	slices.Sort(eventIDs)
	k := 0
	for i := range p.ps {
		if p.writer[i] {
			p.rawID[i] = rawIDs[k]
			k++
		}
	}
	p.byID = make(map[int64]*plannedEvent, len(p.events))
	for k, pe := range p.events {
		pe.id, pe.rawID = eventIDs[k], p.rawID[pe.input]
		p.byID[pe.id] = pe
	}
}

// layerEvents splits events into layers in which each address appears at
// most once, keeping each address's events in order, each layer in
// address order (rows are locked in key order, so concurrent batches
// cannot deadlock). An event that turns out to be a replay is dropped
// from its layer by the statements, which leaves the order of the rest
// intact.
func layerEvents(evs []*plannedEvent) [][]*plannedEvent {
	next := map[string]int{}
	var layers [][]*plannedEvent
	for _, pe := range evs {
		pe.layer = next[pe.key]
		next[pe.key]++
		if pe.layer == len(layers) {
			layers = append(layers, nil)
		}
		layers[pe.layer] = append(layers[pe.layer], pe)
	}
	for _, l := range layers {
		slices.SortFunc(l, func(a, b *plannedEvent) int { return cmp.Compare(a.key, b.key) })
	}
	return layers
}

// inputArgs are the arguments of insertInputsSQL: the raw inputs', then
// the events'.
func (p *batchPlan) inputArgs() []any { return append(p.rawArgs(), p.eventArgs()...) }

// rawArgs are the arguments of the raw inputs' insert: every writer.
func (p *batchPlan) rawArgs() []any {
	var ids []int64
	var sizes []*int32
	var sums, bodies [][]byte
	var sources, providers, ctypes, statuses, perrs, kinds []string
	var received []time.Time
	var results []*string
	var resultZs [][]byte
	for i, pr := range p.ps {
		if !p.writer[i] {
			continue
		}
		in := pr.in
		ids, sums, bodies = append(ids, p.rawID[i]), append(sums, pr.sum[:]), append(bodies, pr.body)
		var size *int32
		if pr.deflatedSize >= 0 {
			n := int32(pr.deflatedSize)
			size = &n
		}
		sizes = append(sizes, size)
		sources, providers, ctypes = append(sources, in.Source), append(providers, in.Provider), append(ctypes, in.ContentType)
		statuses, perrs, kinds = append(statuses, string(in.Status)), append(perrs, clip(in.Error, 2000)), append(kinds, in.Kind)
		received = append(received, pr.received)
		var res *string
		if pr.result != nil && pr.resultZ == nil {
			s := string(pr.result)
			res = &s
		}
		results, resultZs = append(results, res), append(resultZs, pr.resultZ)
	}
	return []any{ids, sums, sources, providers, ctypes, bodies, received, statuses, perrs, kinds, results, sizes, resultZs}
}

// eventArgs are the arguments of the events' insert, in batch order.
func (p *batchPlan) eventArgs() []any {
	n := len(p.events)
	ids, rawIDs := make([]int64, n), make([]int64, n)
	addrs, keys, types, classes, reasons := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	statuses, replies, diags, rmtas, remotes, omids := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	sources, providers, scopes := make([]string, n), make([]string, n), make([]string, n)
	peids, evidences := make([]*string, n), make([]*string, n)
	unverified := make([]bool, n)
	occurred := make([]time.Time, n)
	for i, pe := range p.events {
		ev, in := pe.ev, p.ps[pe.input].in
		ids[i], rawIDs[i] = pe.id, pe.rawID
		addrs[i], keys[i] = ev.Address, pe.key
		types[i], classes[i], reasons[i] = string(ev.Type), string(ev.Class), string(ev.Reason)
		statuses[i], replies[i], diags[i] = clip(string(ev.Status), 32), clip(ev.ReplyCode, 8), clip(ev.Diagnostic, 4000)
		rmtas[i], remotes[i], omids[i] = clip(ev.ReportingMTA, 255), clip(ev.RemoteMTA, 255), clip(ev.OriginalMessageID, 998)
		sources[i], providers[i], scopes[i] = in.Source, in.Provider, pe.scope
		if ev.ProviderEventID != "" {
			id := ev.ProviderEventID
			peids[i] = &id
		}
		occurred[i], unverified[i], evidences[i] = ev.OccurredAt, ev.Unverified, evidenceJSON(ev.Evidence)
	}
	return []any{ids, rawIDs, addrs, keys, types, classes, reasons, statuses, replies, diags, rmtas, remotes,
		omids, sources, providers, peids, scopes, occurred, evidences, unverified}
}

// evidenceJSON encodes evidence for its jsonb column (nil for NULL).
func evidenceJSON(ev *parse.Evidence) *string {
	if ev == nil {
		return nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil
	}
	s := string(cleanJSON(b))
	return &s
}

// recipientGroups splits a layer into the events that touch the soft
// window (a counted failure or a delivery) and the others, whose
// recipients upserts differ. A sent event (accepted for delivery) touches
// no recipient: it changes no counter, and keeps no state of its own.
func recipientGroups(layer []*plannedEvent) (windowed, plain []*plannedEvent) {
	for _, pe := range layer {
		if pe.ev.Type == parse.EventSent {
			continue
		}
		if pe.ev.Type == parse.EventDelivery || pe.dec.counts {
			windowed = append(windowed, pe)
		} else {
			plain = append(plain, pe)
		}
	}
	return windowed, plain
}

// recipientArgs are the arguments of a recipients upsert for group:
// tenant, key, address, the counters' increments, the event, and
// (windowed) what the soft window needs.
func recipientArgs(group []*plannedEvent, windowed bool, pol *Policy) []any {
	n := len(group)
	tenants, keys, addrs, types, mkeys, reasons := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	hard, complaint, sender := make([]int32, n), make([]int32, n), make([]int32, n)
	lastBounce, lastDelivery := make([]*time.Time, n), make([]*time.Time, n)
	delivery, counts := make([]bool, n), make([]bool, n)
	ids := make([]int64, n)
	at, days := make([]time.Time, n), make([]time.Time, n)
	for i, pe := range group {
		ev := pe.ev
		isBounce := ev.Type == parse.EventBounce
		tenants[i], keys[i], addrs[i] = TenantOf(pe.scope), pe.key, ev.Address
		hard[i] = int32(b2i(isBounce && ev.Class == parse.ClassHard))
		complaint[i] = int32(b2i(ev.Type == parse.EventComplaint))
		sender[i] = int32(b2i(ev.Class == parse.ClassSender))
		occurred := ev.OccurredAt
		if isBounce {
			lastBounce[i] = &occurred
		}
		if ev.Type == parse.EventDelivery {
			lastDelivery[i] = &occurred
		}
		u := occurred.UTC()
		ids[i], types[i], at[i] = pe.id, string(ev.Type), occurred
		days[i] = time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
		delivery[i], counts[i] = ev.Type == parse.EventDelivery, pe.dec.counts
		mkeys[i], reasons[i] = messageKey(ev.OriginalMessageID), string(ev.Reason)
	}
	args := []any{tenants, keys, addrs, hard, complaint, sender, ids, types, at, lastBounce, lastDelivery}
	if windowed {
		args = append(args, delivery, counts, days, mkeys, reasons, pol.window())
	}
	return args
}

// entries decides, from the soft counts the layer's recipients upserts
// returned, which of its events suppress and where. An event with no
// count was a replay, and is not applied.
func (p *batchPlan) entries(layer []*plannedEvent, softCount map[int64]int) []entry {
	var out []entry
	for _, pe := range layer {
		n, ok := softCount[pe.id]
		if !ok {
			continue
		}
		in := p.ps[pe.input].in
		if e := entryFromEvent(p.pol, pe.dec, n, pe.id, in.Source, in.Provider, "", pe.scope, pe.ev); e != nil {
			out = append(out, *e)
			pe.suppressed = suppressed{reason: e.Reason, scope: e.Scope}
		}
	}
	slices.SortFunc(out, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(parse.AddressKey(a.Address), parse.AddressKey(b.Address)))
	})
	return out
}

// entryFromEvent decides whether ev suppresses, and where: bounces on the
// root list of the event's tenant (global without one), complaints there
// or on the event's own list as the policy says, unsubscribes on the
// event's own list. It returns nil when nothing is to be suppressed.
func entryFromEvent(pol *Policy, dec decision, softCount int, eventID int64, source, provider, actor, scope string, ev parse.Event) *entry {
	if ev.Unverified {
		return nil
	}
	e := &entry{
		Address: ev.Address, Reason: ev.Reason, Class: ev.Class, Status: string(ev.Status), ReplyCode: ev.ReplyCode,
		Diagnostic: ev.Diagnostic, Source: source, Provider: provider, EventID: eventID, At: ev.OccurredAt, CreatedBy: actor,
	}
	switch ev.Type {
	case parse.EventUnsubscribe:
		e.Scope, e.Reason, e.Class = scope, ReasonUnsubscribe, parse.ClassNone
		return e
	case parse.EventComplaint:
		e.Scope, e.Class = RootScope(scope), parse.ClassComplaint
		if pol.ComplaintScope == ComplaintList {
			e.Scope = scope
		}
	case parse.EventBounce:
		if !dec.suppress || (dec.counts && softCount < dec.threshold) {
			return nil
		}
		e.Scope = RootScope(scope)
	default:
		return nil
	}
	if !dec.suppress {
		return nil
	}
	if dec.expiry > 0 {
		exp := ev.OccurredAt.Add(time.Duration(dec.expiry) * 24 * time.Hour)
		e.ExpiresAt = &exp
	}
	return e
}

// suppressArgs are the arguments of the suppressions upsert for entries
// (distinct addresses, in key order); $17 is the time now, as
// suppressOnConflictSQL expects.
func suppressArgs(entries []entry, now time.Time) []any {
	n := len(entries)
	scopes, addrs, keys, domains, reasons, classes := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	statuses, replies, diags, sources, providers, createdBy, notes := make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ids := make([]int64, n)
	at := make([]time.Time, n)
	expires := make([]*time.Time, n)
	for i, e := range entries {
		scopes[i], addrs[i], keys[i], domains[i] = e.Scope, e.Address, parse.AddressKey(e.Address), parse.AddressDomain(e.Address)
		reasons[i], classes[i], statuses[i], replies[i] = string(e.Reason), string(e.Class), clip(e.Status, 32), clip(e.ReplyCode, 8)
		diags[i], sources[i], providers[i] = clip(e.Diagnostic, 4000), e.Source, e.Provider
		ids[i], at[i], expires[i], createdBy[i], notes[i] = e.EventID, e.At, e.ExpiresAt, e.CreatedBy, clip(e.Note, 1000)
	}
	return []any{scopes, addrs, keys, domains, reasons, classes, statuses, replies, diags, sources, providers, ids, at,
		expires, createdBy, notes, now}
}

// reportedArgs are the arguments of suppressSQL that record the layer's
// bounces and complaints as changes ($18–$21): their event ids, types,
// scopes and times; n is how many there are.
func reportedArgs(layer []*plannedEvent) (args []any, n int) {
	ids, types, scopes, at := []int64{}, []string{}, []string{}, []time.Time{}
	for _, pe := range layer {
		if t := pe.ev.Type; t == parse.EventBounce || t == parse.EventComplaint {
			ids, types, scopes, at = append(ids, pe.id), append(types, string(t)), append(scopes, pe.scope), append(at, pe.ev.OccurredAt)
		}
	}
	return []any{ids, types, scopes, at}, len(ids)
}

// answers is what the database said while recording a batch: the raw
// inputs and events inserted, the events that newly suppressed.
type answers struct {
	created, isNew, added map[int64]bool
}

// results turns the database's answers into each input's outcome. Inputs
// whose bytes were stored before get their stored message afterwards
// (see readReplays).
func (p *batchPlan) results(a answers) []recorded {
	recs := make([]recorded, len(p.ps))
	eventIDsOf := make([][]int64, len(p.ps))
	for _, pe := range p.events {
		if !a.isNew[pe.id] {
			continue
		}
		r := &recs[pe.input]
		eventIDsOf[pe.input] = append(eventIDsOf[pe.input], pe.id)
		r.events = append(r.events, pe.ev)
		r.out.Recorded++
		if a.added[pe.id] {
			r.out.SuppressionsAdded++
			r.added = append(r.added, pe.suppressed)
		}
	}
	for i, pr := range p.ps {
		if p.writer[i] && a.created[p.rawID[i]] {
			recs[i].out.Created = true
			ids := eventIDsOf[i]
			if ids == nil {
				ids = make([]int64, 0)
			}
			recs[i].out.Message = pr.message(p.rawID[i], ids)
		}
	}
	return recs
}

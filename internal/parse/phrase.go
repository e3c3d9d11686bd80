package parse

import (
	"bytes"
	"slices"
	"strings"
)

// phraseSet finds every phrase of a fixed list in a text in one pass
// (Aho-Corasick, compiled to a DFA), so classifying a diagnostic costs the
// same whatever the number of phrases, and never more than linear time.
// Matching folds ASCII case and treats any run of white space as a single
// space, so phrases wrapped over lines in a report still match. A phrase
// that starts or ends with '|' only matches at a word boundary there.
type phraseSet struct {
	class   [256]uint8 // byte -> input class
	space   uint8      // the class of white space
	nclass  int
	delta   []uint16 // state*nclass + class -> next state, | hasOutput
	outs    []int32  // phrase ids, grouped by state
	outAt   []int32  // outs[outAt[s]:outAt[s+1]] end in state s
	phrases []phraseInfo
}

// hasOutput marks, in a transition, a target state where phrases end.
const hasOutput = 1 << 15

type phraseInfo struct {
	n          int // length in normalised bytes
	wordStart  bool
	wordEnd    bool
	normalized string
}

// normPhrase lower-cases ASCII and collapses white space.
func normPhrase(p string) string {
	return string(appendNormPhrase(make([]byte, 0, len(p)), p))
}

// appendNormPhrase appends p normalised as normPhrase does to b.
func appendNormPhrase(b []byte, p string) []byte {
	space := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			if !space {
				b = append(b, ' ')
			}
			space = true
			continue
		}
		space = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// newPhraseSet returns the automaton of a phrase list: the one compiled
// ahead of time into phrasetable.go when the list (normalised) is one it
// was compiled from, else one built now. Built at start, the automata
// were most of what `bounced parse` spent before reading its first file:
// about 1 MB of tables written into fresh pages in every process, where
// compiled ones are read-only data of the binary, paged in as they are
// read.
func newPhraseSet(list []string) *phraseSet {
	if ps := compiledPhraseSet(phraseListKey(list), len(list)); ps != nil {
		return ps
	}
	return buildPhraseSet(list)
}

// phraseListKey identifies a phrase list by what its automaton depends
// on: each phrase normalised, its word boundaries, and their order
// (64-bit FNV-1a). It allocates nothing, so looking up a compiled
// automaton costs next to nothing at start.
func phraseListKey(list []string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	add := func(c byte) { h = (h ^ uint64(c)) * prime }
	var buf [128]byte
	for _, p := range list {
		norm := appendNormPhrase(buf[:0], p)
		wordStart, wordEnd := len(norm) > 0 && norm[0] == '|', len(norm) > 0 && norm[len(norm)-1] == '|'
		norm = bytes.Trim(norm, "|")
		add(boolByte(wordStart))
		add(boolByte(wordEnd))
		for k := 0; k < 8; k++ {
			add(byte(len(norm) >> (8 * k)))
		}
		for _, c := range norm {
			add(c)
		}
	}
	return h
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// buildPhraseSet compiles a phrase list into its automaton.
func buildPhraseSet(list []string) *phraseSet {
	ps := &phraseSet{}
	// Input classes: one per distinct byte used by a phrase, 0 for others.
	used := [256]bool{}
	for _, p := range list {
		p = strings.Trim(normPhrase(p), "|")
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	ps.nclass = 1
	for c := 0; c < 256; c++ {
		if used[c] {
			ps.class[c] = uint8(ps.nclass)
			ps.nclass++
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		ps.class[c] = ps.class[c+'a'-'A']
	}
	for _, c := range []byte{'\t', '\n', '\r'} {
		ps.class[c] = ps.class[' ']
	}
	if ps.nclass > 255 {
		panic("parse: too many phrase bytes")
	}

	// The trie is built straight into the transition table: a row of
	// nclass entries per state, 0 where the state has no child (state 0,
	// the root, is never a child). Building it costs a few allocations
	// whatever the number of phrases, which keeps program start fast.
	n := trieSize(list)
	if n >= hasOutput {
		panic("parse: phrase set too large")
	}
	delta := make([]uint16, ps.nclass, n*ps.nclass) // exactly sized: no copying as it grows
	outs := make([][]int32, 1, n)
	for id, raw := range list {
		p := normPhrase(raw)
		info := phraseInfo{wordStart: strings.HasPrefix(p, "|"), wordEnd: strings.HasSuffix(p, "|")}
		p = strings.Trim(p, "|")
		info.n, info.normalized = len(p), p
		ps.phrases = append(ps.phrases, info)
		s := 0
		for i := 0; i < len(p); i++ {
			at := s*ps.nclass + int(ps.class[p[i]])
			if delta[at] == 0 {
				delta[at] = uint16(len(outs))
				outs = append(outs, nil)
				delta = delta[:len(delta)+ps.nclass]
			}
			s = int(delta[at])
		}
		outs[s] = append(outs[s], int32(id))
	}
	states := len(outs)

	// Breadth-first failure links, folded into the table: a missing
	// child takes the failure state's transition, which is complete
	// because the failure state is shallower and came first.
	fail := make([]int32, states)
	queue := make([]int32, 0, states)
	for c := 0; c < ps.nclass; c++ {
		if nx := delta[c]; nx != 0 {
			queue = append(queue, int32(nx))
		}
	}
	for k := 0; k < len(queue); k++ {
		s := int(queue[k])
		if f := fail[s]; len(outs[f]) > 0 {
			outs[s] = append(outs[s], outs[f]...)
		}
		row, frow := delta[s*ps.nclass:(s+1)*ps.nclass], delta[int(fail[s])*ps.nclass:]
		for c := range row {
			if nx := row[c]; nx != 0 {
				fail[nx] = int32(frow[c])
				queue = append(queue, int32(nx))
			} else {
				row[c] = frow[c]
			}
		}
	}
	ps.outAt = make([]int32, states+1)
	total := 0
	for _, o := range outs {
		total += len(o)
	}
	ps.outs = make([]int32, 0, total)
	for s := 0; s < states; s++ {
		ps.outAt[s] = int32(len(ps.outs))
		ps.outs = append(ps.outs, outs[s]...)
	}
	ps.outAt[states] = int32(len(ps.outs))
	for i, next := range delta {
		if len(outs[next]) > 0 {
			delta[i] = next | hasOutput
		}
	}
	ps.delta = delta
	ps.space = ps.class[' ']
	return ps
}

// trieSize returns the number of states of the trie of a phrase list,
// the root included: sorted, each phrase adds the part it does not share
// with the one before it.
func trieSize(list []string) int {
	norm := make([]string, len(list))
	for i, p := range list {
		norm[i] = strings.Trim(normPhrase(p), "|")
	}
	slices.Sort(norm)
	n, prev := 1, ""
	for _, p := range norm {
		lcp := 0
		for lcp < len(p) && lcp < len(prev) && p[lcp] == prev[lcp] {
			lcp++
		}
		n += len(p) - lcp
		prev = p
	}
	return n
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
}

// scan calls fn with the id of every phrase found in text, in the order
// their matches end. fn returns false to stop early.
func (ps *phraseSet) scan(text string, fn func(id int) bool) {
	ps.scanAt(text, func(id, _ int) bool { return fn(id) })
}

// scanAt is scan that also gives the index in text where a match ends.
func (ps *phraseSet) scanAt(text string, fn func(id, end int) bool) {
	s := 0
	space := true
	delta, class, nclass, sp := ps.delta, &ps.class, ps.nclass, ps.space
	for i := 0; i < len(text); i++ {
		cl := class[text[i]]
		if cl == sp && sp != 0 {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		next := delta[s*nclass+int(cl)]
		s = int(next &^ hasOutput)
		if next&hasOutput == 0 {
			continue
		}
		for _, id := range ps.outs[ps.outAt[s]:ps.outAt[s+1]] {
			info := &ps.phrases[id]
			if info.wordEnd && i+1 < len(text) && isWordByte(text[i+1]) {
				continue
			}
			if info.wordStart {
				if b := rawStart(text, i, info.n); b > 0 && isWordByte(text[b-1]) {
					continue
				}
			}
			if !fn(int(id), i) {
				return
			}
		}
	}
}

// rawStart returns where in text a match of n normalised bytes ending at
// end (inclusive) starts: runs of white space count as one byte. Only
// phrases that must start at a word boundary need it, so the hot loop
// keeps no history.
func rawStart(text string, end, n int) int {
	j := end
	for n > 1 && j > 0 {
		j--
		if isSpaceByte(text[j]) {
			for j > 0 && isSpaceByte(text[j-1]) {
				j--
			}
		}
		n--
	}
	return j
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

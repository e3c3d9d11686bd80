package parse

import "strings"

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
	var b strings.Builder
	space := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func newPhraseSet(list []string) *phraseSet {
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

	// Trie.
	type node struct {
		next map[uint8]int
		out  []int32
	}
	nodes := []node{{next: map[uint8]int{}}}
	for id, raw := range list {
		p := normPhrase(raw)
		info := phraseInfo{wordStart: strings.HasPrefix(p, "|"), wordEnd: strings.HasSuffix(p, "|")}
		p = strings.Trim(p, "|")
		info.n, info.normalized = len(p), p
		ps.phrases = append(ps.phrases, info)
		s := 0
		for i := 0; i < len(p); i++ {
			c := ps.class[p[i]]
			nx, ok := nodes[s].next[c]
			if !ok {
				nx = len(nodes)
				nodes = append(nodes, node{next: map[uint8]int{}})
				nodes[s].next[c] = nx
			}
			s = nx
		}
		nodes[s].out = append(nodes[s].out, int32(id))
	}
	if len(nodes) >= hasOutput {
		panic("parse: phrase set too large")
	}

	// Breadth-first failure links, folded into a full transition table.
	n := len(nodes)
	ps.delta = make([]uint16, n*ps.nclass)
	fail := make([]int, n)
	queue := make([]int, 0, n)
	for c := 0; c < ps.nclass; c++ {
		if nx, ok := nodes[0].next[uint8(c)]; ok {
			ps.delta[c] = uint16(nx)
			queue = append(queue, nx)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		nodes[s].out = append(nodes[s].out, nodes[fail[s]].out...)
		for c := 0; c < ps.nclass; c++ {
			if nx, ok := nodes[s].next[uint8(c)]; ok {
				fail[nx] = int(ps.delta[fail[s]*ps.nclass+c])
				ps.delta[s*ps.nclass+c] = uint16(nx)
				queue = append(queue, nx)
			} else {
				ps.delta[s*ps.nclass+c] = ps.delta[fail[s]*ps.nclass+c]
			}
		}
	}
	ps.outAt = make([]int32, n+1)
	for s := 0; s < n; s++ {
		ps.outAt[s] = int32(len(ps.outs))
		ps.outs = append(ps.outs, nodes[s].out...)
	}
	ps.outAt[n] = int32(len(ps.outs))
	for i, next := range ps.delta {
		if len(nodes[next].out) > 0 {
			ps.delta[i] = next | hasOutput
		}
	}
	ps.space = ps.class[' ']
	return ps
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
	var ring [64]byte // the last normalised bytes, for word-start checks
	n := 0            // normalised bytes seen
	s := 0
	space := true
	delta, class, nclass, sp := ps.delta, &ps.class, ps.nclass, ps.space
	for i := 0; i < len(text); i++ {
		c := text[i]
		cl := class[c]
		if cl == sp && sp != 0 {
			if space {
				continue
			}
			space, c = true, ' '
		} else {
			space = false
		}
		ring[n&63] = c
		n++
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
			if info.wordStart && n > info.n && (info.n >= 63 || isWordByte(ring[(n-info.n-1)&63])) {
				continue
			}
			if !fn(int(id), i) {
				return
			}
		}
	}
}

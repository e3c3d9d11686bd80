package parse

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// naiveMatches finds what phraseSet.scanAt must find, the slow way: the
// text lower-cased with each run of white space one space (white space at
// the start dropped), every phrase looked for at every position, word
// boundaries checked in the raw text. Matches are "id@end", end the raw
// index of a match's last byte, sorted.
func naiveMatches(ps *phraseSet, text string) []string {
	var norm []byte
	var at []int // raw index of each byte of norm
	space := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		if isSpaceByte(c) && ps.space != 0 {
			if !space {
				norm, at = append(norm, ' '), append(at, i)
			}
			space = true
			continue
		}
		space = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		norm, at = append(norm, c), append(at, i)
	}
	var out []string
	n := string(norm)
	for id, p := range ps.phrases {
		for k := 0; k+p.n <= len(n); k++ {
			i := strings.Index(n[k:], p.normalized)
			if i < 0 {
				break
			}
			k += i
			start, end := at[k], at[k+p.n-1]
			if p.wordEnd && end+1 < len(text) && isWordByte(text[end+1]) {
				continue
			}
			if p.wordStart && start > 0 && isWordByte(text[start-1]) {
				continue
			}
			out = append(out, fmt.Sprintf("%d@%d", id, end))
		}
	}
	slices.Sort(out)
	return out
}

// scanMatches is what scanAt finds, in naiveMatches' form.
func scanMatches(ps *phraseSet, text string) []string {
	var out []string
	ps.scanAt(text, func(id, end int) bool {
		out = append(out, fmt.Sprintf("%d@%d", id, end))
		return true
	})
	slices.Sort(out)
	return out
}

// phraseSetsUnderTest are automata of every shape the parser builds:
// phrases with and without white space, word boundaries, non-ASCII.
var phraseSetsUnderTest = map[string]*phraseSet{
	"text ascii":  textPhrases.ascii,
	"text other":  textPhrases.other,
	"returned":    returnedMarkers,
	"stage":       stagePhrases,
	"inline dsn":  inlineDSNFields,
	"tone":        reportTone,
	"boilerplate": boilerplate,
	"no space":    newPhraseSet([]string{"rfc7505", "|abc|", "bc", "c"}),
	"spaces":      newPhraseSet([]string{"a  b", " a", "b ", "|x y|", "\ny\n"}),
}

// TestPhraseScan checks the automata against naiveMatches on every mail
// of the corpus and on texts made to trip white-space and word-boundary
// handling.
func TestPhraseScan(t *testing.T) {
	t.Parallel()
	texts := []string{"", " ", "a b", "  a \t\n b  ", "xa bx", " x y ", "x  y", "\ny\n", "\n\ny\r\n\r\n", "abc", "abcd", "zabc", "rfc7505"}
	var files []string
	for _, pattern := range []string{"testdata/*/*.eml", "testdata/*/*/*.eml", "testdata/*/*/*/*.eml"} {
		more, _ := filepath.Glob(pattern)
		files = append(files, more...)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(raw[:min(len(raw), 16<<10)]))
	}
	for name, ps := range phraseSetsUnderTest {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The set's own phrases, run together and wrapped: every one
			// is found at least there (and the word-bounded ones not).
			var own []string
			for _, p := range ps.phrases {
				own = append(own, p.normalized)
			}
			found := 0
			// slices.Concat, not append: the subtests run in parallel and
			// must not write into texts' spare capacity.
			for _, text := range slices.Concat(texts, []string{strings.Join(own, " "), strings.ToUpper(strings.Join(own, "\n\t "))}) {
				got, want := scanMatches(ps, text), naiveMatches(ps, text)
				if !slices.Equal(got, want) {
					t.Fatalf("scanAt(%.80q...) = %v, want %v", text, got, want)
				}
				found += len(got)
			}
			if found == 0 {
				t.Errorf("no phrase of the set found in %d texts", len(texts))
			}
		})
	}
}

func FuzzPhraseScan(f *testing.F) {
	for _, s := range []string{"User unknown", "this is a copy of\n\n  the message", "in reply to RCPT TO", "\nReporting-MTA: x", "x  y", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			return
		}
		for name, ps := range phraseSetsUnderTest {
			if got, want := scanMatches(ps, text), naiveMatches(ps, text); !slices.Equal(got, want) {
				t.Fatalf("%s: scanAt(%q) = %v, want %v", name, text, got, want)
			}
		}
	})
}

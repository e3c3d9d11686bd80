package parse

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pastedLabel is one row of testdata/pasted/labels.tsv: a recipient that a
// bounce people pasted in a forum, issue or help page (or a vendor showed as
// a sample) names as failed or delayed, labelled from the message and its
// thread. Recipient "-" stands for a message naming none the parser could
// find (a bounce whose paste lost it, or a message that is no bounce at all).
type pastedLabel struct {
	file, vendor, lang, rcpt, action, class string
	suppress, notBounce                     bool
	note                                    string
}

func readPastedLabels(tb testing.TB, dir string) []pastedLabel {
	tb.Helper()
	var out []pastedLabel
	for _, c := range readLabelRows(tb, filepath.Join(dir, "labels.tsv"), 9) {
		out = append(out, pastedLabel{file: c[0], vendor: c[1], lang: c[2], rcpt: c[3], action: c[4], class: c[5],
			suppress: c[6] == "true", notBounce: c[7] == "notbounce", note: c[8]})
	}
	return out
}

// pastedFalseSuppressionBudget is the number of false suppressions the
// parser made on this corpus when it was first measured, before anyone tuned
// anything on it: 0. The test fails when the count rises above it.
//
// First look (held out): recall 28/36, precision 28/28, suppress decision
// 25/36, 11 dead addresses missed, action 28/28, class 16/26. The corpus was
// then used once, to fix what it showed in general terms (a reply code read
// inside an IPv6 address, one recipient's text holding another's, "unable
// to send to" as a recipient lead-in, Microsoft's and Tencent's own
// dead-mailbox sentences): recall 34/36, precision 34/34, suppress decision
// 31/36, 5 missed, class 25/32. It is tuned data now; the floors below hold
// those gains. A new held-out set is new messages in a new directory.
const pastedFalseSuppressionBudget = 0

// pastedFloors are the recall and the count of dead addresses missed after
// the fixes above.
const (
	pastedMinFound      = 34
	pastedMaxMissedDead = 5
)

// pasted2FalseSuppressionBudget is the same budget for the second held-out
// set (testdata/pasted2: new messages and pages, none of round one's).
//
// First look (35 messages, held out): recall 31/31, precision 31/31,
// suppress decision 29/31, 1 false suppression (web.de's "mailbox
// unavailable ... invalid DNS MX" read as an unknown user), 1 dead address
// missed, action 29/31, class 21/29, 26 messages wholly right. The parser
// was then fixed once on it in general terms (a sending domain's DNS
// record named is the sender's problem; a delay warning's "could not be
// delivered for more than 2 hour(s)" does not make it final; Exim's "This
// is a temporary error ... deferred"): suppress decision 30/31, 0 false
// suppressions, action 31/31, class 22/29. Tuned data now, held at that.
const pasted2FalseSuppressionBudget = 0

// pastedCorpus is one held-out directory and what it must hold to: its
// false-suppression budget, and a recall floor and a ceiling on dead
// addresses missed (-1: none).
type pastedCorpus struct {
	dir                             string
	budget, minFound, maxMissedDead int
}

var pastedCorpora = []pastedCorpus{
	{"testdata/pasted", pastedFalseSuppressionBudget, pastedMinFound, pastedMaxMissedDead},
	{"testdata/pasted2", pasted2FalseSuppressionBudget, 31, 1},
}

// classMatches reports whether a parsed class agrees with a label: "policy"
// is a label for a reply that is the sender's or a passing problem, so
// either soft or sender counts.
func classMatches(label string, got Class) bool {
	switch label {
	case "hard":
		return got == ClassHard
	case "soft":
		return got == ClassSoft
	case "sender":
		return got == ClassSender
	case "policy":
		return got == ClassSoft || got == ClassSender
	}
	return false
}

// TestPastedCorpus scores the parser on bounces of formats the other corpora
// do not hold, pasted by people in public threads or shown by vendors
// (testdata/pasted, see README.md there and SOURCES for each message's page).
// It is held out: nothing in the parser was tuned on it. Per recipient it
// counts recall and precision of the recipients found, whether the
// suppression decision is right, false suppressions (an address suppressed
// that the message and thread do not say is dead), dead addresses missed, the
// action, and the class. It logs every disagreement and fails only when the
// false suppressions exceed a corpus's budget or its floors are not held.
// Each directory in pastedCorpora is scored on its own.
func TestPastedCorpus(t *testing.T) {
	t.Parallel()
	for _, c := range pastedCorpora {
		t.Run(filepath.Base(c.dir), func(t *testing.T) { scorePastedCorpus(t, c) })
	}
}

func scorePastedCorpus(t *testing.T, c pastedCorpus) {
	labels := readPastedLabels(t, c.dir)
	if len(labels) < 30 {
		t.Fatalf("%s/labels.tsv has %d rows, want the whole corpus", c.dir, len(labels))
	}
	byFile := map[string][]pastedLabel{}
	var files []string
	for _, l := range labels {
		if byFile[l.file] == nil {
			files = append(files, l.file)
		}
		byFile[l.file] = append(byFile[l.file], l)
	}
	sort.Strings(files)

	var (
		expected, found, got               int // recipients labelled, labelled and found, reported
		suppressN, suppressOK              int
		falseSuppress, missedDead          int
		classN, classOK, actionN, actionOK int
		msgOK                              int
	)
	for _, file := range files {
		rows := byFile[file]
		raw, err := os.ReadFile(filepath.Join(c.dir, file))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Parse(raw)
		if err != nil {
			t.Logf("%s: parse error %v", file, err)
		}
		var problems []string
		want := map[string]pastedLabel{}
		for _, l := range rows {
			if l.rcpt != "-" {
				want[AddressKey(l.rcpt)] = l
			}
		}
		gotBy := map[string]*Recipient{}
		for i := range rep.Recipients {
			r := &rep.Recipients[i]
			k := AddressKey(r.Address)
			gotBy[k] = r
			got++
			l, ok := want[k]
			if !ok {
				problems = append(problems, fmt.Sprintf("extra recipient %q (action %s, reason %s, class %s, suppress %t)",
					r.Address, r.Action, r.Reason, r.Class, r.Suppress))
			}
			if r.Suppress && (!ok || !l.suppress) {
				falseSuppress++
				t.Logf("%s: FALSE SUPPRESSION of %s: reason %s (diagnostic %q, evidence %+v)", file, r.Address, r.Reason, r.Diagnostic, r.Evidence)
			}
		}
		for _, l := range rows {
			if l.rcpt == "-" {
				continue
			}
			expected++
			suppressN++
			r := gotBy[AddressKey(l.rcpt)]
			if r == nil {
				if !l.suppress {
					suppressOK++
				} else {
					missedDead++
				}
				problems = append(problems, fmt.Sprintf("recipient %s not found (want %s %s suppress=%t)", l.rcpt, l.action, l.class, l.suppress))
				continue
			}
			found++
			if r.Suppress == l.suppress {
				suppressOK++
			} else if l.suppress {
				missedDead++
				problems = append(problems, fmt.Sprintf("%s: suppress false, want true (reason %s, class %s, evidence %+v)", l.rcpt, r.Reason, r.Class, r.Evidence))
			}
			if l.action != "-" {
				actionN++
				if string(r.Action) == l.action {
					actionOK++
				} else {
					problems = append(problems, fmt.Sprintf("%s: action %s, want %s", l.rcpt, r.Action, l.action))
				}
			}
			if l.class != "-" {
				classN++
				if classMatches(l.class, r.Class) {
					classOK++
				} else {
					problems = append(problems, fmt.Sprintf("%s: class %s (reason %s), want %s", l.rcpt, r.Class, r.Reason, l.class))
				}
			}
		}
		if len(problems) == 0 {
			msgOK++
			continue
		}
		t.Logf("%s [%s, kind %s, engine %q]: %s", file, rows[0].vendor, rep.Kind, rep.Engine, strings.Join(problems, "; "))
	}
	pct := func(a, b int) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%d/%d %.1f%%", a, b, 100*float64(a)/float64(b))
	}
	t.Logf("%s: %d messages, %d wholly right (%s)", c.dir, len(files), msgOK, pct(msgOK, len(files)))
	t.Logf("recall %s; precision %s; suppress decision %s; false suppressions %d; missed dead addresses %d; action %s; class %s",
		pct(found, expected), pct(found, got), pct(suppressOK, suppressN), falseSuppress, missedDead, pct(actionOK, actionN), pct(classOK, classN))
	if c.minFound >= 0 && (found < c.minFound || missedDead > c.maxMissedDead) {
		t.Errorf("recall %d (want at least %d), %d dead addresses missed (want at most %d)", found, c.minFound, missedDead, c.maxMissedDead)
	}
	if falseSuppress > c.budget {
		t.Errorf("%d false suppressions, more than the %d measured at first look", falseSuppress, c.budget)
	}
}

package parse

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var printDisagreements = flag.Bool("disagreements", false, "print every disagreement with the Sisimai labels, in the format of testdata/disagreements.tsv")

// sisimaiReasons maps Sisimai's reason names to ours, as the table
// does. Two of our reasons have no Sisimai name and are compared by what
// Sisimai reports instead: "delayed" agrees with any row whose status is
// transient (a delay warning), "bad_syntax" with any row whose status is
// X.1.3. Sisimai's "rejected" means the envelope sender was refused, which
// is our "sender_rejected" as much as "policy_rejected".
var sisimaiReasons = map[string][]Reason{
	"userunknown":     {ReasonUserUnknown},
	"hostunknown":     {ReasonDomainUnknown},
	"notaccept":       {ReasonDomainUnknown},
	"hasmoved":        {ReasonHasMoved},
	"suspend":         {ReasonMailboxDisabled},
	"mailboxfull":     {ReasonMailboxFull},
	"mesgtoobig":      {ReasonMessageTooLarge},
	"exceedlimit":     {ReasonMessageTooLarge},
	"spamdetected":    {ReasonSpamBlocked},
	"virusdetected":   {ReasonSpamBlocked},
	"blocked":         {ReasonSpamBlocked},
	"badreputation":   {ReasonSpamBlocked},
	"requireptr":      {ReasonSpamBlocked},
	"rejected":        {ReasonPolicyRejected, ReasonSenderRejected},
	"filtered":        {ReasonPolicyRejected},
	"policyviolation": {ReasonPolicyRejected},
	"notcompliantrfc": {ReasonPolicyRejected},
	"contenterror":    {ReasonPolicyRejected},
	"toomanyconn":     {ReasonRateLimited},
	"speeding":        {ReasonRateLimited},
	"networkerror":    {ReasonNetworkError},
	"systemerror":     {ReasonSystemError},
	"systemfull":      {ReasonSystemError},
	"mailererror":     {ReasonSystemError},
	"expired":         {ReasonExpired},
	"norelaying":      {ReasonRelayDenied},
	"securityerror":   {ReasonAuthRequired},
	"authfailure":     {ReasonAuthFailure},
	"syntaxerror":     {ReasonProtocolError},
	"feedback":        {ReasonComplaint},
	"vacation":        {ReasonAutoReply},
	"delivered":       {ReasonDelivered},
	"onhold":          {ReasonOther},
	"undefined":       {ReasonOther},
}

// sisimaiRow is one line of expected.tsv.
type sisimaiRow struct {
	file, engine string
	index        int
	status       string
	reply        string
	reason       string
	hard         bool
}

func readExpected(tb testing.TB) []sisimaiRow {
	tb.Helper()
	f, err := os.Open("testdata/sisimai/expected.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var rows []sisimaiRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 || c[0] == "file" {
			continue
		}
		idx, err := strconv.Atoi(c[2])
		if err != nil {
			tb.Fatalf("expected.tsv: bad index in %q", sc.Text())
		}
		rows = append(rows, sisimaiRow{file: c[0], engine: c[1], index: idx, status: c[3], reply: c[4], reason: c[5], hard: c[6] == "1"})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return rows
}

// readDisagreements reads testdata/disagreements.tsv: file, index, aspect
// (hard, reason or status), ours, Sisimai's, and why ours is right.
func readDisagreements(tb testing.TB) map[string]string {
	tb.Helper()
	f, err := os.Open("testdata/disagreements.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 6 || len(strings.TrimPrefix(strings.TrimSpace(c[5]), "LABEL:")) < 20 {
			tb.Fatalf("disagreements.tsv: want 6 tab-separated columns with a reason why, got %q", line)
		}
		out[strings.Join(c[:5], "\t")] = c[5]
	}
	return out
}

// labelErrors returns the rows (file and row number) whose listed
// disagreement says Sisimai's label contradicts the report itself
// ("LABEL:"), or that a product rule decides otherwise on purpose
// ("RULE:", issue 13: a suppression needs strong evidence, and a final
// failure after retries is 5.x).
func labelErrors(listed map[string]string, prefix string) map[string]bool {
	out := map[string]bool{}
	for key, why := range listed {
		if strings.HasPrefix(why, prefix) {
			c := strings.Split(key, "\t")
			out[c[0]+"\t"+c[1]] = true
		}
	}
	return out
}

// TestSisimaiAccuracy compares every labelled recipient of the shared
// corpus with Sisimai's reading, per recipient (matched on index within
// the report), and holds the bars: 99.5% agreement on hard,
// 97% on reason, 100% on status class. Sisimai's own pseudo codes
// (X.0.9xx) are compared on class only. Every disagreement must be listed
// with a reason why ours is right; a listed one that no longer occurs
// must be removed.
//
// Rows listed with a why starting "RULE:" are left out of the rates too,
// at most maxRuled of them: issue 13's rules (suppress only on strong
// evidence; a final failure after retries is 5.x) deliberately depart
// from Sisimai's label there.
func TestSisimaiAccuracy(t *testing.T) {
	t.Parallel()
	rows := readExpected(t)
	listed := readDisagreements(t)
	excluded := labelErrors(listed, "LABEL:")
	ruled := labelErrors(listed, "RULE:")
	if len(ruled) > maxRuled {
		t.Errorf("%d rows are left out as decided by a product rule (RULE:), want at most %d: the guard must not be hollowed", len(ruled), maxRuled)
	}
	if len(rows) != 464 {
		t.Fatalf("expected.tsv has %d rows, want 464", len(rows))
	}
	// A few files list the same index twice; there the n-th row of the
	// file is compared with the n-th recipient.
	perFile := map[string][]int{}
	for i, r := range rows {
		perFile[r.file] = append(perFile[r.file], i)
	}
	reports := map[string]*Report{}
	var hardOK, reasonOK, statusOK, compared int
	var rawHard, rawReason, rawStatus int
	found := map[string]bool{}
	var unlisted []string
	for file, idxs := range perFile {
		raw, err := os.ReadFile(filepath.Join("testdata/sisimai", file))
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := Parse(raw)
		reports[file] = rep
		dup := map[int]bool{}
		repeated := false
		for _, i := range idxs {
			if dup[rows[i].index] {
				repeated = true
			}
			dup[rows[i].index] = true
		}
		for n, i := range idxs {
			row := rows[i]
			pos := row.index - 1
			if repeated {
				pos = n
			}
			var got Recipient
			if pos < len(rep.Recipients) {
				got = rep.Recipients[pos]
			} else if len(rep.Recipients) > 0 && repeated {
				got = rep.Recipients[len(rep.Recipients)-1]
			}
			check := func(aspect, ours, theirs string, ok bool) {
				key := fmt.Sprintf("%s\t%d\t%s\t%s\t%s", file, n+1, aspect, ours, theirs)
				if ok {
					return
				}
				found[key] = true
				if _, ok := listed[key]; !ok {
					unlisted = append(unlisted, key+"\t"+got.Diagnostic)
				}
			}
			hard := got.Class == ClassHard
			check("hard", strconv.FormatBool(hard), strconv.FormatBool(row.hard), hard == row.hard)
			reasonAgrees := reasonMatches(got, row)
			check("reason", string(got.Reason), row.reason, reasonAgrees)
			theirClass := 0
			if row.status != "" {
				theirClass = int(row.status[0] - '0')
			}
			statusAgrees := got.Status.Class() == theirClass
			check("status", string(got.Status), row.status, statusAgrees)

			rawHard += b2i(hard == row.hard)
			rawReason += b2i(reasonAgrees)
			rawStatus += b2i(statusAgrees)
			if row := fmt.Sprintf("%s\t%d", file, n+1); excluded[row] || ruled[row] {
				continue
			}
			compared++
			hardOK += b2i(hard == row.hard)
			reasonOK += b2i(reasonAgrees)
			statusOK += b2i(statusAgrees)
		}
	}
	total := float64(compared)
	hardRate, reasonRate, statusRate := float64(hardOK)/total, float64(reasonOK)/total, float64(statusOK)/total
	all := float64(len(rows))
	t.Logf("agreement with Sisimai on %d of %d rows (%d rows whose label contradicts the report and %d decided by a product rule left out): hard %.2f%%, reason %.2f%%, status class %.2f%%; %d listed disagreements",
		compared, len(rows), len(excluded), len(ruled), 100*hardRate, 100*reasonRate, 100*statusRate, len(found))
	t.Logf("on all %d rows: hard %.2f%%, reason %.2f%%, status class %.2f%%",
		len(rows), 100*float64(rawHard)/all, 100*float64(rawReason)/all, 100*float64(rawStatus)/all)
	if hardRate < 0.995 || reasonRate < 0.97 || statusRate < 1 {
		t.Errorf("agreement below the bars (hard 99.5%%, reason 97%%, status class 100%%)")
	}
	sort.Strings(unlisted)
	for _, u := range unlisted {
		t.Errorf("unlisted disagreement (add it to testdata/disagreements.tsv with a reason, or fix the parser):\n%s", u)
	}
	var stale []string
	for key := range listed {
		if !found[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		t.Errorf("listed disagreement no longer occurs, remove it from testdata/disagreements.tsv:\n%s", s)
	}
	if *printDisagreements {
		keys := make([]string, 0, len(found))
		for k := range found {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			file := strings.SplitN(k, "\t", 2)[0]
			diag := ""
			if rep := reports[file]; rep != nil && len(rep.Recipients) > 0 {
				diag = clip(rep.Recipients[0].Diagnostic, 160)
			}
			fmt.Printf("%s\t%s\t[%s]\n", k, listed[k], diag)
		}
	}
}

// maxRuled caps the rows a product rule may take out of the rates.
const maxRuled = 8

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reasonMatches compares our reason with a Sisimai row through the table.
func reasonMatches(got Recipient, row sisimaiRow) bool {
	switch got.Reason {
	case ReasonDelayed:
		return strings.HasPrefix(row.status, "4.")
	case ReasonBadSyntax:
		return strings.HasSuffix(row.status, ".1.3")
	}
	for _, r := range sisimaiReasons[row.reason] {
		if r == got.Reason {
			return true
		}
	}
	return false
}

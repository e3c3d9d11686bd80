package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/bounced/bounced/internal/parse"
)

const explainText = `Explains each code: an enhanced status code (RFC 3463, such as 5.1.1) or an
SMTP reply code (550): what it means (in English and Spanish), the reason
and class bounced gives it, whether that alone suppresses the address, and
what to do. Given a file instead, parses the bounce in it and shows, for
each recipient, its reason and class and the evidence that decided them.
It needs no database.
`

func explain(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("explain", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	asJSON := fset.Bool("json", false, "print JSON")
	h := help{name: "explain", text: explainText, flags: func(fs *flag.FlagSet) { fs.Bool("json", false, "print JSON") }}
	if err := fset.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fset.NArg() == 0 {
		return usageError{"explain: give a code such as 5.1.1 or 550, or a bounce message file"}
	}
	for i, arg := range fset.Args() {
		e, err := parse.Explain(arg)
		if err != nil {
			// Not a code: a file, when there is one by that name.
			fi, serr := os.Stat(arg)
			switch {
			case serr == nil && fi.Mode().IsRegular():
				if i > 0 && !*asJSON {
					fmt.Fprintln(stdout)
				}
				if err := explainFile(arg, *asJSON, stdout); err != nil {
					return err
				}
				continue
			case serr != nil && !errors.Is(serr, fs.ErrNotExist):
				return fmt.Errorf("explain: %w", serr)
			}
			return usageError{fmt.Sprintf("explain: %q is neither an enhanced status code (5.1.1), an SMTP reply code (550) nor a file", arg)}
		}
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(e); err != nil {
				return err
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printExplanation(stdout, e)
	}
	return nil
}

// fileExplanation is `bounced explain --json FILE`: the report with the
// explanation of each recipient's code.
type fileExplanation struct {
	File   string        `json:"file"`
	Report *parse.Report `json:"report"`
	Error  string        `json:"error,omitempty"`
	// Codes explains each recipient's status code, in recipient order.
	Codes []parse.Explanation `json:"codes"`
}

func explainFile(path string, asJSON bool, w io.Writer) error {
	raw, err := readCapped(path)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	rep, perr := parse.Parse(raw)
	out := fileExplanation{File: path, Report: rep, Codes: []parse.Explanation{}}
	if perr != nil {
		out.Error = perr.Error()
	}
	for _, r := range rep.Recipients {
		e, _ := parse.Explain(string(r.Status))
		out.Codes = append(out.Codes, e)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(out)
	}
	fmt.Fprintf(w, "%s: %s", path, rep.Kind)
	if rep.Engine != "" {
		fmt.Fprintf(w, " (read as %s)", rep.Engine)
	}
	fmt.Fprintln(w)
	if out.Error != "" {
		fmt.Fprintf(w, "  error:     %s\n", out.Error)
	}
	if len(rep.Recipients) == 0 {
		fmt.Fprintln(w, "  no recipient found")
	}
	for i, r := range rep.Recipients {
		fmt.Fprintf(w, "  recipient: %s\n", r.Address)
		fmt.Fprintf(w, "    action:   %s, status %s", r.Action, r.Status)
		if t := out.Codes[i].Title; t != "" {
			fmt.Fprintf(w, " (%s)", t)
		}
		if r.ReplyCode != "" {
			fmt.Fprintf(w, ", reply %s", r.ReplyCode)
		}
		fmt.Fprintln(w)
		if r.Diagnostic != "" {
			fmt.Fprintf(w, "    said:     %s\n", r.Diagnostic)
		}
		fmt.Fprintf(w, "    reason:   %s (class %s, suppress: %t)\n", r.Reason, r.Class, r.Suppress)
		ev := r.Evidence
		fmt.Fprintf(w, "    evidence: %s: %q by rule %s\n", ev.From, ev.Text, ev.Rule)
		if ev.Note != "" {
			fmt.Fprintf(w, "    note:     %s\n", ev.Note)
		}
	}
	return nil
}

func printExplanation(w io.Writer, e parse.Explanation) {
	if e.ReplyCode != "" {
		fmt.Fprintf(w, "%s  SMTP reply: %s (usually sent with %s)\n", e.ReplyCode, e.ReplyText, e.Code)
	}
	title := e.Title
	if !e.Registered {
		title = "(not a registered code; read by its class and subject)"
	}
	fmt.Fprintf(w, "%s  %s — %s\n", e.Code, e.ClassName, title)
	fmt.Fprintf(w, "  subject:   %s / %s\n", e.Subject, e.SubjectES)
	if e.Registered {
		fmt.Fprintf(w, "  meaning:   %s\n", e.Meaning)
		fmt.Fprintf(w, "  en español: %s — %s\n", e.TitleES, e.MeaningES)
		fmt.Fprintf(w, "  reference: %s\n", e.Reference)
	}
	fmt.Fprintf(w, "  reason:    %s (class %s, suppress: %t)\n", e.Reason, e.Class, e.Suppress)
	fmt.Fprintf(w, "  advice:    %s\n", e.Advice)
	if e.Why != "" {
		fmt.Fprintf(w, "  why:       %s\n", wrap(e.Why, 13, 78))
		fmt.Fprintf(w, "  por qué:   %s\n", wrap(e.WhyES, 13, 78))
	}
}

// wrap breaks text into lines of at most width columns, indenting the
// lines after the first by indent spaces.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(text) {
		if i > 0 && col+1+len(word) > width {
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

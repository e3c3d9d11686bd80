package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bounced/bounced/internal/parse"
)

const explainText = `Explains each code: an enhanced status code (RFC 3463, such as 5.1.1) or an
SMTP reply code (550): what it means (in English and Spanish), the reason
and class bounced gives it, whether that alone suppresses the address, and
what to do. It needs no database.
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
		return usageError{"explain: give a code such as 5.1.1 or 550"}
	}
	for i, code := range fset.Args() {
		e, err := parse.Explain(code)
		if err != nil {
			return usageError{fmt.Sprintf("explain: %q is neither an enhanced status code (5.1.1) nor an SMTP reply code (550)", code)}
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

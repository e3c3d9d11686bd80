package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/bounced/bounced/internal/parse"
)

func explain(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("explain", flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print JSON")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
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
}

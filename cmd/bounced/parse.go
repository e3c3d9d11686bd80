package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bounced/bounced/internal/parse"
)

// parseLine is one line of `bounced parse` output.
type parseLine struct {
	File string `json:"file"`
	*parse.Report
	Error string `json:"error"`
}

func parseFiles(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("parse", flag.ContinueOnError)
	fset.SetOutput(stderr)
	pretty := fset.Bool("pretty", false, "indent the JSON")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: bounced parse [--pretty] FILE|DIR|- ...")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return usageError{"parse: no input files (use - for standard input)"}
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if *pretty {
		enc.SetIndent("", "  ")
	}
	emit := func(name string, raw []byte, readErr error) error {
		line := parseLine{File: name}
		if readErr != nil {
			line.Report = &parse.Report{Kind: parse.KindNotBounce, Recipients: []parse.Recipient{}}
			line.Error = readErr.Error()
		} else {
			rep, err := parse.Parse(raw)
			line.Report = rep
			if err != nil {
				line.Error = err.Error()
			}
		}
		return enc.Encode(line)
	}
	for _, arg := range fset.Args() {
		if arg == "-" {
			raw, err := io.ReadAll(io.LimitReader(stdin, parse.MaxInputSize+1))
			if err := emit("-", raw, err); err != nil {
				return err
			}
			continue
		}
		err := filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return emit(path, nil, err)
			}
			if d.IsDir() {
				return nil
			}
			raw, err := readCapped(path)
			return emit(path, raw, err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, parse.MaxInputSize+1))
}

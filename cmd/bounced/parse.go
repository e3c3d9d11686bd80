package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/bounced/bounced/internal/parse"
)

// parseLine is one line of `bounced parse` output: the report, and the
// events bounced records from it (the same derivation as the service's;
// without a time of receipt, an event occurred when the report says, and
// has no occurred_at when it says nothing).
type parseLine struct {
	File string `json:"file"`
	*parse.Report
	Events []parse.Event `json:"events"`
	Error  string        `json:"error"`
}

// parseJob is one input of `bounced parse`, numbered in the order the
// arguments name it: its line is printed in that order, whatever order
// the workers finish in.
type parseJob struct {
	seq     int
	name    string
	raw     []byte // read already (standard input), or nil
	read    bool   // whether raw holds the input
	readErr error
}

// parseResult is one input's line, encoded by the worker that parsed it
// so that encoding runs on every core too.
type parseResult struct {
	seq  int
	line []byte
	err  error
}

const parseText = `Prints one JSON object per input file per line, in the order the arguments
name them (directories recursively, in lexical order): the report, and
under "events" what bounced records from it. A file that cannot
be read or parsed gets a line with "error" set; the others are still
parsed. It needs no database.
`

func parseFiles(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("parse", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	pretty := fset.Bool("pretty", false, "indent the JSON")
	jobs := fset.Int("jobs", runtime.GOMAXPROCS(0), "files parsed at once (the default is one per core)")
	verpPrefix := fset.String("verp-prefix", "", "recover recipients from VERP bounce addresses with this local-part prefix (bounces+user=example.com@...)")
	rcptHeaders := fset.String("recipient-header", "", "comma-separated header fields of the returned message that name the recipient")
	progress := fset.String("progress", "auto", "count files on standard error: auto (when it is a terminal and the output is not), always or never")
	h := help{name: "parse", text: parseText, flags: func(fs *flag.FlagSet) {
		fset.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	}}
	if err := fset.Parse(args); err != nil {
		return flagsFailed(err, h, stdout)
	}
	if fset.NArg() == 0 {
		return usageError{"parse: no input files (use - for standard input; bounced parse --help)"}
	}
	if *jobs < 1 {
		return usageError{"parse: --jobs must be at least 1"}
	}
	if *progress != "auto" && *progress != "always" && *progress != "never" {
		return usageError{fmt.Sprintf("parse: --progress %q is not auto, always or never", *progress)}
	}
	opt := parse.Options{VERP: parse.VERP{Prefix: *verpPrefix}}
	for _, h := range strings.Split(*rcptHeaders, ",") {
		if h = strings.TrimSpace(h); h != "" {
			opt.RecipientHeaders = append(opt.RecipientHeaders, h)
		}
	}
	var tick func()
	// The files' total is unknown while the walk goes on: a counter, not a bar.
	if *progress == "always" || *progress == "auto" && isTerminal(stderr) && !isTerminal(stdout) {
		bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("parsing"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("files"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSpinnerType(14))
		tick = func() { _ = bar.Add(1) }
		defer func() {
			_ = bar.Finish()
			fmt.Fprintln(stderr)
		}()
	}
	return runParse(fset.Args(), stdin, stdout, *pretty, *jobs, opt, tick)
}

// runParse parses the inputs on n workers and writes one line per input
// in argument order. Lines finished out of order wait in a window of at
// most 4n inputs, so memory stays bounded however many files there are.
// tick, when not nil, is called after each line is written.
func runParse(args []string, stdin io.Reader, stdout io.Writer, pretty bool, n int, opt parse.Options, tick func()) error {
	window := make(chan struct{}, 4*n) // inputs between dispatch and output
	todo := make(chan parseJob, n)
	done := make(chan parseResult, n)
	stop := make(chan struct{}) // closed when output fails
	var workers sync.WaitGroup
	for range n {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if pretty {
				enc.SetIndent("", "  ")
			}
			// One read buffer per worker: Parse copies what it keeps, and
			// the line is encoded before the next file is read into it.
			var readBuf []byte
			for job := range todo {
				buf.Reset()
				var line parseLine
				line, readBuf = parseOne(job, opt, readBuf)
				err := enc.Encode(line)
				done <- parseResult{seq: job.seq, line: bytes.Clone(buf.Bytes()), err: err}
			}
		}()
	}
	go func() {
		defer close(todo)
		seq := 0
		send := func(job parseJob) bool {
			select {
			case window <- struct{}{}:
			case <-stop:
				return false
			}
			job.seq = seq
			seq++
			todo <- job
			return true
		}
		walk(args, stdin, send)
	}()
	go func() {
		workers.Wait()
		close(done)
	}()

	// Print in order: a line finished early waits for the ones before it.
	// Lines go out through a buffer: one write per line was a system
	// call per file.
	out := bufio.NewWriterSize(stdout, 64<<10)
	var err error
	pending := map[int]parseResult{}
	next := 0
	for res := range done {
		pending[res.seq] = res
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-window
			if err != nil {
				continue
			}
			if err = r.err; err == nil {
				_, err = out.Write(r.line)
			}
			if err == nil && tick != nil {
				tick()
			}
			if err != nil {
				close(stop)
			}
		}
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return fmt.Errorf("parse: write output: %w", err)
	}
	return nil
}

// walk names every input of the arguments, in order, until send says
// to stop. Directories are walked recursively in lexical order; inside
// them only regular files are read (a FIFO would block), while a path
// named on the command line is read whatever it is.
func walk(args []string, stdin io.Reader, send func(parseJob) bool) {
	for _, arg := range args {
		if arg == "-" {
			raw, err := io.ReadAll(io.LimitReader(stdin, parse.MaxInputSize+1))
			if !send(parseJob{name: "-", raw: raw, read: true, readErr: err}) {
				return
			}
			continue
		}
		keepGoing := true
		_ = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				keepGoing = send(parseJob{name: path, read: true, readErr: err})
			case d.IsDir():
				return nil
			case path != arg && !regular(path, d):
				keepGoing = send(parseJob{name: path, read: true, readErr: errors.New("not a regular file")})
			default:
				keepGoing = send(parseJob{name: path})
			}
			if !keepGoing {
				return fs.SkipAll
			}
			return nil
		})
		if !keepGoing {
			return
		}
	}
}

// regular reports a regular file, following a symbolic link.
func regular(path string, d fs.DirEntry) bool {
	if d.Type().IsRegular() {
		return true
	}
	if d.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(path)
		return err == nil && fi.Mode().IsRegular()
	}
	return false
}

// parseOne reads (unless read already) and parses one input, reading
// into buf and returning it for the next input. It never fails: errors
// go into the line.
func parseOne(job parseJob, opt parse.Options, buf []byte) (parseLine, []byte) {
	line := parseLine{File: job.name}
	raw, err := job.raw, job.readErr
	if !job.read {
		raw, err = readCappedInto(job.name, buf[:0])
		if err == nil {
			buf = raw
		}
	}
	if err != nil {
		line.Report = &parse.Report{Kind: parse.KindNotBounce, Recipients: []parse.Recipient{}}
		line.Events = []parse.Event{}
		line.Error = err.Error()
		return line, buf
	}
	rep, err := parse.ParseWithOptions(raw, opt)
	line.Report = rep
	line.Events = parse.Events(rep, time.Time{})
	if err != nil {
		line.Error = err.Error()
	}
	return line, buf
}

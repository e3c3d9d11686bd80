package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/loadgen"
	"github.com/bounced/bounced/internal/pgserver"
)

// This file is the -dbwork mode: it measures the database work bounced
// does per stored event on each ingest path, on a fresh private
// PostgreSQL (fsync and synchronous_commit on), beside the floor: the
// same rows written set-based into a table with the events table's
// columns and indexes.
//
// Per path it creates a fresh database, starts bin/bounced on it, warms
// it up, stops it (so every backend has flushed its statistics), reads
// the counters, starts bounced again, sends the load, stops bounced and
// reads the counters again. The differences are divided by the events
// stored:
//   - WAL records and bytes without full-page images: pg_waldump --stats
//     over the run's LSN range (pg_current_wal_lsn before and after);
//     pg_stat_wal's record count beside it;
//   - buffer accesses (blks_hit + blks_read) and commits (xact_commit) of
//     the path's database: pg_stat_database;
//   - CPU: bounced's process, and PostgreSQL's (the postmaster with its
//     live and exited children) from /proc, in clock ticks.
//
// Autovacuum is off during the measurement, so the figures are the
// ingest's own work; checkpoints are pushed past the run.

// dbworkPath is one ingest path measured.
type dbworkPath struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Provider    string `json:"provider"`
	Events      int    `json:"events_per_request"`
	Concurrency int    `json:"concurrency"`
	Requests    int    `json:"requests"`
}

// dbworkMaxConcurrency bounds -concurrency with -dbwork: PostgreSQL
// alone is measured with a connection per request in flight, beside
// bounced's pool.
const dbworkMaxConcurrency = 256

// dbworkPaths are the paths of issue 15's table, in its order; the
// title gets the requests in flight.
var dbworkPaths = []dbworkPath{
	{Name: "single", Title: "single-event generic webhooks", Provider: loadgen.Generic, Events: 1, Concurrency: 32, Requests: 20000},
	{Name: "batched", Title: "generic webhooks, 500 per request", Provider: loadgen.Generic, Events: 500, Concurrency: 4, Requests: 200},
	{Name: "dsn", Title: "raw DSN POSTs (5.1.1)", Provider: loadgen.DSN, Events: 1, Concurrency: 8, Requests: 4000},
}

// work is what one measurement counted, per stored event where it says so.
type work struct {
	Events        int64   `json:"events"`
	WALRecords    float64 `json:"wal_records"`
	WALBytes      float64 `json:"wal_bytes_no_fpi"`
	FPIBytes      float64 `json:"fpi_bytes"`
	StatWALRecs   float64 `json:"pg_stat_wal_records"`
	Buffers       float64 `json:"buffer_accesses"`
	Commits       float64 `json:"commits"`
	BouncedCPUus  float64 `json:"bounced_cpu_us"`
	PostgresCPUus float64 `json:"postgres_cpu_us"`
	// RequestsPerS is the load tool's acknowledged requests per second.
	RequestsPerS float64 `json:"requests_per_second,omitempty"`
	// WALByType is pg_waldump's record count and bytes (without
	// full-page images) per record type, per event.
	WALByType map[string][2]float64 `json:"wal_by_record_type,omitempty"`
}

// pathResult is one path's figures.
type pathResult struct {
	Path  dbworkPath `json:"path"`
	Work  work       `json:"work"`
	Floor work       `json:"floor"`
	// AloneTPS is PostgreSQL alone committing the run's event rows one
	// transaction per event, as many in flight as the path had.
	AloneTPS float64 `json:"alone_one_tx_per_event_per_second,omitempty"`
	// Statements are pg_stat_statements' busiest statements (when the
	// extension could be loaded): buffer accesses and WAL records per
	// stored event.
	Statements []statementWork `json:"statements,omitempty"`
}

type statementWork struct {
	Query      string  `json:"query"`
	Calls      int64   `json:"calls"`
	Buffers    float64 `json:"buffer_accesses_per_event"`
	WALRecords float64 `json:"wal_records_per_event"`
	WALBytes   float64 `json:"wal_bytes_per_event"`
}

type dbworkOptions struct {
	bounced string
	paths   []string
	scale   float64
	// concurrency, when not 0, is every path's requests in flight
	// (at most dbworkMaxConcurrency: PostgreSQL alone needs a
	// connection per request in flight).
	concurrency int
	verbose     bool
	asJSON      bool
}

func runDBWork(ctx context.Context, o dbworkOptions, stdout, stderr io.Writer) error {
	bin, err := filepath.Abs(o.bounced)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-bounced: %w (make build makes bin/bounced)", err)
	}
	dir, err := os.MkdirTemp("", "bounced-dbwork-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The server may run as the postgres user, which must reach its
	// data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	settings := []string{"autovacuum=off", "max_wal_size=16GB", "checkpoint_timeout=1h",
		fmt.Sprintf("max_connections=%d", dbworkMaxConcurrency+44)}
	pg, err := startMeasuredServer(ctx, filepath.Join(dir, "pg"), settings)
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop(context.WithoutCancel(ctx)) }()
	admin, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	statements := admin.QueryRow(ctx, `SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`).Scan(new(int)) == nil
	if !statements {
		_, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
		statements = err == nil
	}
	var results []pathResult
	for _, p := range dbworkPaths {
		if len(o.paths) > 0 && !slices.Contains(o.paths, p.Name) {
			continue
		}
		p.Requests = max(1, int(float64(p.Requests)*o.scale))
		if o.concurrency > 0 {
			p.Concurrency = o.concurrency
		}
		p.Title = fmt.Sprintf("%s, %d in flight", p.Title, p.Concurrency)
		fmt.Fprintf(stderr, "dbwork: %s: %d requests of %d event(s)\n", p.Title, p.Requests, p.Events)
		res, err := measurePath(ctx, pg, admin, bin, dir, p, statements)
		if err != nil {
			return fmt.Errorf("dbwork: %s: %w", p.Name, err)
		}
		results = append(results, res)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printDBWork(stdout, results, o.verbose)
	return nil
}

// startMeasuredServer starts a private PostgreSQL with pg_stat_statements
// loaded when the server has it, and without it otherwise.
func startMeasuredServer(ctx context.Context, dataDir string, settings []string) (*pgserver.Server, error) {
	withStatements := append(slices.Clone(settings), "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.max=1000")
	pg, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Database: "postgres", Settings: withStatements,
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		return pg, nil
	}
	return pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Database: "postgres", Settings: settings,
		Logger: slog.New(slog.DiscardHandler)})
}

// snapshot is the cumulative counters at one moment.
type snapshot struct {
	lsn         string
	walRecords  int64
	commits     int64
	buffers     int64
	postgresCPU int64 // clock ticks
	statements  map[int64]stmtCounters
}

type stmtCounters struct {
	query    string
	calls    int64
	buffers  int64
	wal      int64
	walBytes int64
}

func takeSnapshot(ctx context.Context, admin *pgx.Conn, pg *pgserver.Server, db string, statements bool) (snapshot, error) {
	var s snapshot
	err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, (SELECT wal_records FROM pg_stat_wal),
		xact_commit, blks_hit + blks_read FROM pg_stat_database WHERE datname = $1`, db).
		Scan(&s.lsn, &s.walRecords, &s.commits, &s.buffers)
	if err != nil {
		return s, fmt.Errorf("read statistics: %w", err)
	}
	if s.postgresCPU, err = postgresTicks(pg); err != nil {
		return s, err
	}
	if statements {
		s.statements = map[int64]stmtCounters{}
		rows, err := admin.Query(ctx, `SELECT queryid, query, calls, shared_blks_hit + shared_blks_read, wal_records, wal_bytes::bigint
			FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`, db)
		if err != nil {
			return s, fmt.Errorf("read pg_stat_statements: %w", err)
		}
		var id int64
		var c stmtCounters
		if _, err := pgx.ForEachRow(rows, []any{&id, &c.query, &c.calls, &c.buffers, &c.wal, &c.walBytes}, func() error {
			s.statements[id] = c
			return nil
		}); err != nil {
			return s, err
		}
	}
	return s, nil
}

// measurePath runs one path on a fresh database and measures it and its
// floor.
func measurePath(ctx context.Context, pg *pgserver.Server, admin *pgx.Conn, bin, dir string, p dbworkPath, statements bool) (pathResult, error) {
	res := pathResult{Path: p}
	db := "dbwork_" + p.Name
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+db); err != nil {
		return res, err
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+db); err != nil {
		return res, err
	}
	dbURL := pg.URL(db)
	kit := &webhooktest.Kit{Keys: webhook.TestKeys{Secret: randomHex(16)}}
	b, err := startBounced(ctx, bin, dir, dbURL, kit.Keys.Secret)
	if err != nil {
		return res, err
	}
	if _, err := loadgen.Run(ctx, loadOptions(p, max(1, p.Requests/50), kit, b.url)); err != nil {
		_ = b.stop()
		return res, fmt.Errorf("warm-up: %w", err)
	}
	// bounced makes the monthly partitions in the background at start:
	// let that happen before the measurement, not during it.
	if err := waitPartitions(ctx, dbURL); err != nil {
		_ = b.stop()
		return res, err
	}
	if err := b.stop(); err != nil {
		return res, err
	}
	if err := waitIdle(ctx, admin, db); err != nil {
		return res, err
	}
	eventsBefore, maxID, err := countEvents(ctx, dbURL)
	if err != nil {
		return res, err
	}
	if err := waitIdle(ctx, admin, db); err != nil {
		return res, err
	}
	if statements {
		if _, err := admin.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
			return res, err
		}
	}
	before, err := takeSnapshot(ctx, admin, pg, db, statements)
	if err != nil {
		return res, err
	}
	if b, err = startBounced(ctx, bin, dir, dbURL, kit.Keys.Secret); err != nil {
		return res, err
	}
	cpu0, err := processTicks(b.cmd.Process.Pid)
	if err != nil {
		_ = b.stop()
		return res, err
	}
	run, err := loadgen.Run(ctx, loadOptions(p, p.Requests, kit, b.url))
	if err != nil {
		_ = b.stop()
		return res, err
	}
	if run.GaveUp > 0 {
		_ = b.stop()
		return res, fmt.Errorf("%d requests were never acknowledged", run.GaveUp)
	}
	cpu1, err := processTicks(b.cmd.Process.Pid)
	if err != nil {
		_ = b.stop()
		return res, err
	}
	if err := b.stop(); err != nil {
		return res, err
	}
	if err := waitIdle(ctx, admin, db); err != nil {
		return res, err
	}
	after, err := takeSnapshot(ctx, admin, pg, db, statements)
	if err != nil {
		return res, err
	}
	eventsAfter, _, err := countEvents(ctx, dbURL)
	if err != nil {
		return res, err
	}
	n := eventsAfter - eventsBefore
	if n <= 0 {
		return res, errors.New("no events stored")
	}
	res.Work, err = workBetween(ctx, pg, before, after, n)
	if err != nil {
		return res, err
	}
	res.Work.BouncedCPUus = ticksToMicros(cpu1-cpu0) / float64(n)
	res.Work.RequestsPerS = run.RequestsPerS
	if statements {
		res.Statements = busiest(before.statements, after.statements, n)
	}
	if res.Floor, err = measureFloor(ctx, pg, admin, db, maxID); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	if p.Events == 1 && p.Provider != loadgen.DSN {
		if res.AloneTPS, err = measureAlone(ctx, dbURL, maxID, p.Concurrency); err != nil {
			return res, fmt.Errorf("one transaction per event: %w", err)
		}
	}
	return res, nil
}

func loadOptions(p dbworkPath, requests int, kit *webhooktest.Kit, url string) loadgen.Options {
	return loadgen.Options{
		URL: url, Provider: p.Provider, EventsPerRequest: p.Events, Requests: requests,
		Duration: 2 * time.Minute, Drain: 30 * time.Second, Concurrency: p.Concurrency,
		// Every event a new recipient.
		Addresses: requests * p.Events, RunID: "w" + randomHex(5),
		Sign: func(provider string, body []byte) http.Header {
			_, h := kit.Request(provider, body)
			return h
		},
	}
}

// workBetween turns two snapshots into figures per event.
func workBetween(ctx context.Context, pg *pgserver.Server, before, after snapshot, n int64) (work, error) {
	w := work{Events: n}
	recs, recBytes, fpiBytes, byType, err := walStats(ctx, pg, before.lsn, after.lsn)
	if err != nil {
		return w, err
	}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	w.WALRecords, w.WALBytes, w.FPIBytes = per(recs), per(recBytes), per(fpiBytes)
	w.StatWALRecs = per(after.walRecords - before.walRecords)
	w.Buffers = per(after.buffers - before.buffers)
	w.Commits = per(after.commits - before.commits)
	w.PostgresCPUus = ticksToMicros(after.postgresCPU-before.postgresCPU) / float64(n)
	w.WALByType = map[string][2]float64{}
	for k, v := range byType {
		w.WALByType[k] = [2]float64{per(v[0]), per(v[1])}
	}
	return w, nil
}

// recordLine is a line of pg_waldump --stats=record: type, count, its
// share, and the records' size.
var recordLine = regexp.MustCompile(`^(\S+)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)`)

// walStats reads pg_waldump --stats=record over [from, to): the records,
// their bytes without full-page images, the images' bytes, and the records
// and bytes by record type.
func walStats(ctx context.Context, pg *pgserver.Server, from, to string) (recs, recBytes, fpiBytes int64, byType map[string][2]int64, err error) {
	byType = map[string][2]int64{}
	if from == to {
		return 0, 0, 0, byType, nil
	}
	cmd := exec.CommandContext(ctx, filepath.Join(pg.BinDir(), "pg_waldump"), "--stats=record",
		"-p", filepath.Join(pg.DataDir(), "pg_wal"), "-s", from, "-e", to)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	total := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		switch {
		case f[0] == "Total":
			// Total N record-size [%] FPI-size [%] combined [100%]
			recs, _ = strconv.ParseInt(f[1], 10, 64)
			recBytes, _ = strconv.ParseInt(f[2], 10, 64)
			fpiBytes, _ = strconv.ParseInt(f[4], 10, 64)
			total = true
		case strings.Contains(f[0], "/"):
			// rmgr/TYPE N ( %) record-size ( %) FPI-size ( %) ...
			if m := recordLine.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				b, _ := strconv.ParseInt(m[3], 10, 64)
				if n > 0 {
					byType[m[1]] = [2]int64{n, b}
				}
			}
		}
	}
	if !total {
		return 0, 0, 0, nil, fmt.Errorf("pg_waldump: %w: %s", runErr, strings.TrimSpace(errOut.String()))
	}
	return recs, recBytes, fpiBytes, byType, nil
}

// measureFloor writes the run's event rows again, in one set-based
// statement, into a fresh table with the events table's columns and
// indexes, and measures that.
func measureFloor(ctx context.Context, pg *pgserver.Server, admin *pgx.Conn, db string, afterID int64) (work, error) {
	conn, err := pgx.Connect(ctx, pg.URL(db))
	if err != nil {
		return work{}, err
	}
	cols, err := floorTable(ctx, conn, "dbwork_floor")
	if err != nil {
		conn.Close(ctx)
		return work{}, err
	}
	// Read the rows once, so the measured statement finds them cached.
	if _, err := conn.Exec(ctx, `SELECT count(*) FROM events WHERE id > $1`, afterID); err != nil {
		conn.Close(ctx)
		return work{}, err
	}
	conn.Close(ctx)
	if err := waitIdle(ctx, admin, db); err != nil {
		return work{}, err
	}
	before, err := takeSnapshot(ctx, admin, pg, db, false)
	if err != nil {
		return work{}, err
	}
	if conn, err = pgx.Connect(ctx, pg.URL(db)); err != nil {
		return work{}, err
	}
	tag, err := conn.Exec(ctx, `INSERT INTO dbwork_floor (`+cols+`) SELECT `+cols+` FROM events WHERE id > $1`, afterID)
	conn.Close(ctx)
	if err != nil {
		return work{}, err
	}
	if err := waitIdle(ctx, admin, db); err != nil {
		return work{}, err
	}
	after, err := takeSnapshot(ctx, admin, pg, db, false)
	if err != nil {
		return work{}, err
	}
	if tag.RowsAffected() == 0 {
		return work{}, errors.New("no rows")
	}
	return workBetween(ctx, pg, before, after, tag.RowsAffected())
}

// floorTable creates a table with the events table's columns and
// indexes (no foreign key, no partitions) and returns its insertable
// columns.
func floorTable(ctx context.Context, conn *pgx.Conn, name string) (string, error) {
	if _, err := conn.Exec(ctx, `CREATE TABLE `+name+` (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES)`); err != nil {
		return "", err
	}
	var cols string
	err := conn.QueryRow(ctx, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`).Scan(&cols)
	return cols, err
}

// measureAlone is PostgreSQL alone with one transaction per event: the
// run's event rows inserted one by one, each committed on its own
// (synchronous_commit on), from as many connections as the run had
// requests in flight, into a table like the floor's. It returns the
// commits per second.
func measureAlone(ctx context.Context, dbURL string, afterID int64, concurrency int) (float64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	cols, err := floorTable(ctx, conn, "dbwork_alone")
	if err != nil {
		return 0, err
	}
	rows, err := conn.Query(ctx, `SELECT `+cols+` FROM events WHERE id > $1 ORDER BY id`, afterID)
	if err != nil {
		return 0, err
	}
	var all [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	ncols := len(strings.Split(cols, ", "))
	ph := make([]string, ncols)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	insert := `INSERT INTO dbwork_alone (` + cols + `) VALUES (` + strings.Join(ph, ", ") + `)`
	conns := make([]*pgx.Conn, concurrency)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, dbURL); err != nil {
			return 0, err
		}
		defer conns[i].Close(context.WithoutCancel(ctx))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(time.Minute)
	for _, c := range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(all) || time.Now().After(deadline) {
					return
				}
				if _, err := c.Exec(ctx, insert, all[i]...); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	done := min(int(next.Load()), len(all))
	return float64(done) / time.Since(start).Seconds(), nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// busiest returns the statements with the most buffer accesses during the
// run, per stored event.
func busiest(before, after map[int64]stmtCounters, n int64) []statementWork {
	var out []statementWork
	for id, a := range after {
		b := before[id]
		if a.calls == b.calls {
			continue
		}
		q := strings.Join(strings.Fields(a.query), " ")
		if len(q) > 120 {
			q = q[:120] + "..."
		}
		out = append(out, statementWork{Query: q, Calls: a.calls - b.calls,
			Buffers: float64(a.buffers-b.buffers) / float64(n), WALRecords: float64(a.wal-b.wal) / float64(n),
			WALBytes: float64(a.walBytes-b.walBytes) / float64(n)})
	}
	slices.SortFunc(out, func(x, y statementWork) int {
		return int((y.Buffers + y.WALRecords - x.Buffers - x.WALRecords) * 1000)
	})
	return out[:min(len(out), 12)]
}

// bouncedProcess is a bounced serve started for a measurement.
type bouncedProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

func startBounced(ctx context.Context, bin, dir, dbURL, secret string) (*bouncedProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = append(os.Environ(),
		"BOUNCED_DATABASE_URL="+dbURL, "BOUNCED_LISTEN="+addr, "BOUNCED_LOG_LEVEL=warn",
		"BOUNCED_DATA_DIR="+filepath.Join(dir, "data"), "BOUNCED_WEBHOOK_GENERIC_SECRETS="+secret)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	url := "http://" + addr
	b := &bouncedProcess{cmd: cmd, url: url, done: make(chan error, 1)}
	go func() { b.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		select {
		case err := <-b.done:
			return nil, fmt.Errorf("bounced exited: %w: %s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = b.stop()
			return nil, fmt.Errorf("bounced not ready after 60 s: %s", logs.String())
		}
	}
}

func (b *bouncedProcess) stop() error {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-time.After(60 * time.Second):
		_ = b.cmd.Process.Kill()
		return errors.New("bounced did not stop within 60 s")
	}
}

// waitIdle waits until no session is connected to db, so that every
// backend that worked on it has exited and flushed its statistics.
func waitIdle(ctx context.Context, admin *pgx.Conn, db string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			// The last backend's exit is done once it is gone from the
			// list; its statistics are flushed before that.
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sessions still on %s", n, db)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPartitions waits until the monthly events partitions bounced makes
// at start exist (the next two months; on a fresh database this month is
// the partition the migration made).
func waitPartitions(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events\_y%'`).Scan(&n); err != nil {
			return err
		}
		if n >= 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("bounced made no monthly partitions within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countEvents(ctx context.Context, dbURL string) (n, maxID int64, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(max(id), 0) FROM events`).Scan(&n, &maxID)
	return n, maxID, err
}

// processTicks is a process's user and system CPU time in clock ticks.
func processTicks(pid int) (int64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return f.utime + f.stime, nil
}

// postgresTicks is the CPU time of the postmaster, its live children
// and the children it has reaped.
func postgresTicks(pg *pgserver.Server) (int64, error) {
	pid, err := pg.PID()
	if err != nil {
		return 0, err
	}
	root, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	total := root.utime + root.stime + root.cutime + root.cstime
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(child)
		if err != nil || f.ppid != int64(pid) {
			continue
		}
		total += f.utime + f.stime
	}
	return total, nil
}

type statFields struct{ ppid, utime, stime, cutime, cstime int64 }

// procStat reads /proc/PID/stat (proc(5)): after the command name in
// parentheses come state, ppid, ... utime (14), stime, cutime, cstime.
func procStat(pid int) (statFields, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return statFields{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return statFields{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return statFields{ppid: num(1), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}, nil
}

// ticksToMicros converts clock ticks (USER_HZ, 100 on Linux) to µs.
func ticksToMicros(t int64) float64 { return float64(t) * 1e6 / 100 }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func printDBWork(w io.Writer, results []pathResult, verbose bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tevents\tWAL records\tWAL bytes (no FPI)\tbuffer accesses\tcommits\tbounced CPU µs\tPG CPU µs\trequests/s\t")
	row := func(name string, wk work, cpu bool) {
		bc, pc, rps := "—", fmt.Sprintf("%.0f", wk.PostgresCPUus), "—"
		if cpu {
			bc = fmt.Sprintf("%.0f", wk.BouncedCPUus)
			rps = fmt.Sprintf("%.0f", wk.RequestsPerS)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.1f\t%.3f\t%s\t%s\t%s\t\n", name, wk.Events, wk.WALRecords, wk.WALBytes,
			wk.Buffers, wk.Commits, bc, pc, rps)
	}
	for _, r := range results {
		row(r.Path.Title, r.Work, true)
		row("  floor: same rows, set-based", r.Floor, false)
	}
	tw.Flush()
	for _, r := range results {
		if r.AloneTPS > 0 {
			fmt.Fprintf(w, "\n%s: bounced %.0f durable requests/s; PostgreSQL alone, one transaction per event, %d in flight: %.0f/s (ratio %.2f)\n",
				r.Path.Name, r.Work.RequestsPerS, r.Path.Concurrency, r.AloneTPS, r.Work.RequestsPerS/r.AloneTPS)
		}
	}
	if !verbose {
		return
	}
	for _, r := range results {
		fmt.Fprintf(w, "\n%s: WAL records and bytes per event by record type (pg_waldump), FPI bytes %.0f, pg_stat_wal records %.1f\n",
			r.Path.Name, r.Work.FPIBytes, r.Work.StatWALRecs)
		keys := make([]string, 0, len(r.Work.WALByType))
		for k := range r.Work.WALByType {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := r.Work.WALByType[k]
			fmt.Fprintf(w, "  %-28s %6.2f %7.0f B\n", k, v[0], v[1])
		}
		if len(r.Statements) > 0 {
			fmt.Fprintf(w, "%s: busiest statements (pg_stat_statements), per stored event\n", r.Path.Name)
			for _, s := range r.Statements {
				fmt.Fprintf(w, "  %7.2f buffers %6.2f WAL records %6.0f WAL B %8d calls  %s\n", s.Buffers, s.WALRecords, s.WALBytes, s.Calls, s.Query)
			}
		}
	}
}

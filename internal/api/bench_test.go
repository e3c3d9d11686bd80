package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/store"
)

const benchKey = "bench-admin-key-0123456789abcdef"

// benchServer is the real server over a real database, with its cache
// listener running and an admin key required, as in production.
func benchServer(b *testing.B) (string, *store.DB) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db := dbtest.Open(b, store.Options{Logger: dbtest.Logger(b), MaxConns: 16})
	done := make(chan struct{})
	go func() { defer close(done); _ = db.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	s, err := api.New(api.Deps{Messages: db, Suppressions: db, Events: db, DB: db, Bulk: db, Exporter: db,
		Recipients: db, Stats: db, Policy: db, Keys: db}, api.Options{AdminKey: benchKey})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	for !db.Listening() {
		time.Sleep(10 * time.Millisecond)
	}
	return srv.URL, db
}

func benchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

func benchDo(b *testing.B, c *http.Client, method, url, ctype string, body io.Reader, headers ...string) (int, []byte) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+benchKey)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, got
}

// BenchmarkSingleCheck drives GET /v1/suppressions/{email} over loopback
// HTTP/1.1 keep-alive connections, 32 at once, with a bare client (like
// wrk: hand-written requests, Content-Length framed responses) so the
// load generator takes as little of the machine as it can. It reports
// requests per second and the 99th percentile latency. "hot" checks
// 10,000 addresses over and over (answered from the cache, filled before
// timing); "cold" checks a new address every time (each reads
// PostgreSQL). One address in ten is suppressed.
func BenchmarkSingleCheck(b *testing.B) {
	base, db := benchServer(b)
	var items []store.NewSuppression
	for i := range 1000 {
		items = append(items, store.NewSuppression{Email: fmt.Sprintf("u%d@example.com", i*10), Reason: store.ReasonManual})
	}
	if _, err := db.AddSuppressions(context.Background(), items, "bench", "api"); err != nil {
		b.Fatal(err)
	}
	addr := strings.TrimPrefix(base, "http://")
	coldNext.Store(1 << 40)
	for _, mode := range []string{"hot", "cold"} {
		b.Run(mode, func(b *testing.B) {
			const conns = 32
			if mode == "hot" {
				c := newRawConn(b, addr)
				for i := range 10000 {
					c.get(b, i)
				}
				c.Close()
			}
			var next atomic.Int64
			if mode == "cold" {
				next.Store(coldNext.Add(int64(b.N) + 1))
			}
			var mu sync.Mutex
			var all []time.Duration
			b.SetParallelism(conns / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				c := newRawConn(b, addr)
				defer c.Close()
				lat := make([]time.Duration, 0, 4096)
				for pb.Next() {
					i := int(next.Add(1))
					if mode == "hot" {
						i %= 10000
					}
					t0 := time.Now()
					code := c.get(b, i)
					lat = append(lat, time.Since(t0))
					if code != 200 && code != 404 {
						b.Errorf("status %d", code)
						return
					}
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// coldNext keeps cold runs on addresses no earlier run checked.
var coldNext atomic.Int64

// rawConn is one keep-alive connection of the bare load client.
type rawConn struct {
	net.Conn
	r   *bufio.Reader
	req []byte
}

func newRawConn(b *testing.B, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	return &rawConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}
}

// get checks address u<i>@example.com and returns the status code.
func (c *rawConn) get(b *testing.B, i int) int {
	c.req = c.req[:0]
	c.req = append(c.req, "GET /v1/suppressions/u"...)
	c.req = strconv.AppendInt(c.req, int64(i), 10)
	c.req = append(c.req, "@example.com HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "+benchKey+"\r\n\r\n"...)
	if _, err := c.Write(c.req); err != nil {
		b.Fatal(err)
	}
	status, length := 0, -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case status == 0:
			status, _ = strconv.Atoi(string(line[9:12]))
		case len(line) <= 2:
			if length < 0 {
				b.Fatal("response without Content-Length")
			}
			if _, err := c.r.Discard(length); err != nil {
				b.Fatal(err)
			}
			return status
		case bytes.HasPrefix(line, []byte("Content-Length: ")):
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[16:])))
		}
	}
}

// BenchmarkMillion loads 1,000,000 addresses through the CSV import over
// HTTP (streamed into COPY), then bulk-checks 10,000 addresses against
// them and exports the whole list as CSV, sampling the heap to show the
// export runs in constant memory.
func BenchmarkMillion(b *testing.B) {
	const rows = 1000000
	base, _ := benchServer(b)
	c := benchClient(4)
	b.Run("import-1M", func(b *testing.B) {
		if b.N > 1 {
			b.Skip("run with -benchtime=1x: each round imports a million rows")
		}
		pr, pw := io.Pipe()
		go func() {
			bw := &bytes.Buffer{}
			bw.WriteString("email,reason\n")
			for i := range rows {
				fmt.Fprintf(bw, "m%d@d%d.example,import\n", i, i%5000)
				if bw.Len() > 64<<10 {
					if _, err := pw.Write(bw.Bytes()); err != nil {
						return
					}
					bw.Reset()
				}
			}
			pw.Write(bw.Bytes())
			pw.Close()
		}()
		start := time.Now()
		code, body := benchDo(b, c, "POST", base+"/v1/suppressions/import", "text/csv", pr)
		if code != 200 || !bytes.Contains(body, []byte(`"added":1000000`)) {
			b.Fatalf("import = %d %s", code, body)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/import")
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
	})
	b.Run("bulk-check-10k", func(b *testing.B) {
		var bodies [][]byte
		for round := range 8 {
			var buf bytes.Buffer
			buf.WriteString(`{"emails":[`)
			for i := range 10000 {
				if i > 0 {
					buf.WriteByte(',')
				}
				// One in a hundred is on the list.
				n := (round*10000 + i) * 97
				if i%100 == 0 {
					fmt.Fprintf(&buf, `"m%d@d%d.example"`, n%rows, (n%rows)%5000)
				} else {
					fmt.Fprintf(&buf, `"other%d@d%d.example"`, n, n%5000)
				}
			}
			buf.WriteString(`]}`)
			bodies = append(bodies, buf.Bytes())
		}
		// Each round sends 20 checks one after another, so -benchtime=1x
		// (which the import needs) still measures a few.
		const perRound = 20
		var lat []time.Duration
		for b.Loop() {
			for i := range perRound {
				t0 := time.Now()
				code, body := benchDo(b, c, "POST", base+"/v1/suppressions/check", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				lat = append(lat, time.Since(t0))
				if code != 200 || !bytes.Contains(body, []byte(`"checked":10000`)) {
					b.Fatalf("check = %d %.200s", code, body)
				}
			}
		}
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(lat)), "ms/check")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	})
	b.Run("export-1M", func(b *testing.B) {
		if b.N > 1 {
			b.Skip("run with -benchtime=1x")
		}
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}()
		req, _ := http.NewRequest("GET", base+"/v1/suppressions", nil)
		req.Header.Set("Authorization", "Bearer "+benchKey)
		req.Header.Set("Accept", "text/csv")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(stop)
		if err != nil || resp.StatusCode != 200 || n < rows*50 {
			b.Fatalf("export = %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/export")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(n)/(1<<20), "MiB-sent")
	})
}

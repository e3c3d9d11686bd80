package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/store"
)

// BenchmarkWebhook posts signed webhooks to the real server over loopback
// HTTP, recording through the group committer into PostgreSQL with fsync
// on: single-event generic requests, the same naming the Message-ID of a
// message reported sent (one attribution lookup each), and SendGrid
// batches of 500. Each iteration is one request, acknowledged only after
// its commit.
func BenchmarkWebhook(b *testing.B) {
	kit, err := webhooktest.New()
	if err != nil {
		b.Fatal(err)
	}
	defer kit.Close()
	ctx := context.Background()
	db, err := store.Open(ctx, dbtest.DurableURL(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	group, err := store.NewGroupCommitter(db, store.GroupCommitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer group.Close()
	hooks, err := webhook.New(kit.Config(), group, webhook.Options{HTTPClient: kit.HTTPClient()})
	if err != nil {
		b.Fatal(err)
	}
	s, err := api.New(api.Deps{Webhooks: hooks, DB: db}, withWebhookRoutes(api.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var seq atomic.Int64
	// Messages reported sent, for the attributed shape to find.
	for i := range 50 {
		msgs := make([]store.SentMessage, 1000)
		for j := range msgs {
			msgs[j] = store.SentMessage{MessageID: fmt.Sprintf("<m%d@bench.example>", i*1000+j), Scope: "tenant:acme/list:news"}
		}
		if err := db.RecordSentMessages(ctx, "acme", msgs); err != nil {
			b.Fatal(err)
		}
	}
	for _, shape := range []struct {
		provider string
		events   int
		attrib   bool
	}{{webhook.Generic, 1, false}, {webhook.Generic, 1, true}, {webhook.SendGrid, 500, false}} {
		name := fmt.Sprintf("%s/events=%d", shape.provider, shape.events)
		if shape.attrib {
			name += "/attributed"
		}
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(32) // 32 requests in flight per core
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					var body []byte
					switch {
					case shape.attrib:
						body = fmt.Appendf(nil, `{"recipient":"bench%d@example.com","status":"5.1.1","diagnostic":"550 5.1.1 unknown","id":"bench-%d","original_message_id":"<m%d@bench.example>"}`,
							n%50000, n, n%50000)
					case shape.events == 1:
						body = fmt.Appendf(nil, `{"recipient":"bench%d@example.com","status":"5.1.1","diagnostic":"550 5.1.1 unknown","id":"bench-%d"}`, n%50000, n)
					default:
						var buf bytes.Buffer
						buf.WriteByte('[')
						for j := range shape.events {
							if j > 0 {
								buf.WriteByte(',')
							}
							fmt.Fprintf(&buf, `{"email":"sg%d-%d@example.com","event":"delivered","timestamp":1772359200,"sg_event_id":"sg-%d-%d"}`, n%1000, j, n, j)
						}
						buf.WriteByte(']')
						body = buf.Bytes()
					}
					body, h := kit.Request(shape.provider, body)
					req, _ := http.NewRequest("POST", srv.URL+"/v1/webhooks/"+shape.provider, bytes.NewReader(body))
					req.Header = h
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
			b.ReportMetric(float64(b.N*shape.events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

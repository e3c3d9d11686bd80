package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/bounced/bounced/internal/logtest"
)

const (
	dashboardFile  = "../../deploy/grafana/bounced.json"
	alertsFile     = "../../deploy/prometheus/alerts.yml"
	alertTestsFile = "../../deploy/prometheus/alerts_test.yml"
	promConfigFile = "../../deploy/prometheus/prometheus.yml"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// queries returns every PromQL expression of the dashboard, by where it
// is: panel targets and query variables.
func (d dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s has no expression", p.Title, tg.RefID)
					continue
				}
				out[fmt.Sprintf("panel %q %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query is neither an object nor a string", v.Name)
			}
			q.Query = s
		}
		m := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`).FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		out["variable "+v.Name] = m[1]
	}
	return out
}

// grafanaVars stands in for Grafana's variables so an expression can be
// run by Prometheus itself.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h",
	`"$job"`, `".+"`, `"$instance"`, `".+"`, "${datasource}", "prometheus")

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`)
	bouncedName  = regexp.MustCompile(`\bbounced_[a-zA-Z0-9_]+`)
)

// metricNames lists the metrics an expression selects: every bounced_
// name outside string literals, and every name written before a {...}
// selector.
func metricNames(expr string) []string {
	bare := promString.ReplaceAllString(expr, `""`)
	names := bouncedName.FindAllString(bare, -1)
	for _, m := range promSelector.FindAllStringSubmatch(bare, -1) {
		switch m[1] {
		case "by", "without", "on", "ignoring", "group_left", "group_right":
			continue
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// exposes reports whether a scrape has name as a sample name: a family,
// or a histogram's _bucket, _sum or _count.
func exposes(mfs map[string]*dto.MetricFamily, name string) bool {
	if mf := mfs[name]; mf != nil && len(mf.GetMetric()) > 0 {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if mf := mfs[base]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM && len(mf.GetMetric()) > 0 {
				return true
			}
		}
	}
	return false
}

// promtoolCheckExprs has promtool parse expressions, as recording rules.
func promtoolCheckExprs(t *testing.T, promtool string, exprs map[string]string) {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range exprs {
			if !yield(k) {
				return
			}
		}
	})
	for i, k := range keys {
		rules = append(rules, rule{Record: fmt.Sprintf("check:expr_%d", i), Expr: grafanaVars.Replace(exprs[k])})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "exprs", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "exprs.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the expressions: %v\n%s", err, out)
	}
}

// TestGrafanaDashboard reads deploy/grafana/bounced.json: it has the
// panels the operators' view needs, each expression parses, and every
// metric it uses is exported by a running bounced.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both are needed for provisioning", d.UID, d.Title)
	}
	ids := map[int]bool{}
	var titles []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			titles = append(titles, strings.ToLower(p.Title))
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("panel %q is off the 24-column grid: %+v", p.Title, p.GridPos)
			}
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q does not use the $datasource variable", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, want := range []string{"bounce rate (hard", "bounce rate by provider", "bounce rate by mailbox provider", "bounce rate by reason", "complaint rate",
		"hard vs soft", "suppressions added", "webhook rejects", "ingest latency", "mailbox lag"} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no panel titled like %q", want)
		}
	}
	queries := d.queries(t)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found in the dashboard", len(queries))
	}
	promtoolCheckExprs(t, promtool, queries)

	mfs := parseMetrics(t, startObserved(t).scrape(t))
	for where, expr := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, name := range names {
			if !exposes(mfs, name) {
				t.Errorf("%s uses %s, which bounced does not export", where, name)
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadAlerts(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return rf
}

// TestPrometheusRules runs promtool over deploy/prometheus: the config
// and rules are valid, the rules' unit tests pass and test every alert,
// and every metric an alert uses is exported by a running bounced.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "config", filepath.Base(promConfigFile)},
		{"check", "rules", filepath.Base(alertsFile)},
		{"test", "rules", filepath.Base(alertTestsFile)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	tests, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	rf := loadAlerts(t)
	mfs := parseMetrics(t, startObserved(t).scrape(t))
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" && sev != "info" {
				t.Errorf("alert %s: severity %q is not critical, warning or info", r.Alert, sev)
			}
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no unit test in %s", r.Alert, alertTestsFile)
			}
			for _, name := range metricNames(r.Expr) {
				if name == "up" {
					continue // Prometheus's own
				}
				if !exposes(mfs, name) {
					t.Errorf("alert %s uses %s, which bounced does not export", r.Alert, name)
				}
			}
		}
	}
	for _, want := range []string{"BouncedBounceRateHigh", "BouncedMailboxProviderBounceRateHigh", "BouncedComplaintRateHigh", "BouncedWebhookSignatureFailures",
		"BouncedMailboxStalled", "BouncedDatabaseDown", "BouncedIngestFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestPrometheusScrapesBounced runs a real Prometheus on loopback with
// deploy/prometheus's config pointed at a running bounced: the target is
// up, its series are queryable, every dashboard expression runs, and
// every alert rule evaluates without error.
func TestPrometheusScrapesBounced(t *testing.T) {
	t.Parallel()
	bin := lookTool(t, "prometheus", "prometheus")
	o := startObserved(t)
	conf, err := os.ReadFile(promConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for _, r := range [][2]string{
		{"localhost:8025", strings.TrimPrefix(o.base, "http://")},
		{"scrape_interval: 30s", "scrape_interval: 1s"},
		{"evaluation_interval: 30s", "evaluation_interval: 1s"},
		{"- alerts.yml", "- " + alerts},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("%s no longer has %q; update this test", promConfigFile, r[0])
		}
		text = strings.ReplaceAll(text, r[0], r[1])
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs logtest.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	api := "http://" + addr + "/api/v1/"
	query := func(expr string) (status string, results int, errText string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"query?query="+url.QueryEscape(expr), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", 0, err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result json.RawMessage `json:"result"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &r); err != nil {
			return "", 0, string(body)
		}
		var list []json.RawMessage
		_ = json.Unmarshal(r.Data.Result, &list)
		return r.Status, len(list), r.Error
	}
	deadline := time.Now().Add(90 * time.Second)
	waitFor := func(what, expr string) {
		t.Helper()
		for {
			status, n, _ := query(expr)
			if status == "success" && n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%s)", what, expr)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitFor("bounced to be scraped", `up{job="bounced"} == 1`)
	waitFor("bounced's events", `bounced_events_total{type="bounce",source="webhook",provider="generic"}`)
	// Rates need two scrapes within the window.
	waitFor("a few scrapes", `count_over_time(bounced_build_info[1m]) >= 3`)

	for where, expr := range loadDashboard(t).queries(t) {
		if status, _, errText := query(grafanaVars.Replace(expr)); status != "success" {
			t.Errorf("%s: Prometheus answered %s %s for %s", where, status, errText, expr)
		}
	}
	if status, n, _ := query(grafanaVars.Replace(`max by (reason)(bounced_suppressions_active{job=~"$job",instance=~"$instance"})`)); status != "success" || n == 0 {
		t.Errorf("active suppressions by reason: %s, %d series; want data", status, n)
	}

	// Every alert rule has been evaluated, without error.
	type rulesResp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	want := 0
	for _, g := range loadAlerts(t).Groups {
		want += len(g.Rules)
	}
	for {
		resp, err := http.Get(api + "rules")
		if err != nil {
			t.Fatal(err)
		}
		var rr rulesResp
		err = json.NewDecoder(resp.Body).Decode(&rr)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		ok, n := 0, 0
		var bad []string
		for _, g := range rr.Data.Groups {
			for _, r := range g.Rules {
				n++
				switch r.Health {
				case "ok":
					ok++
				case "err":
					bad = append(bad, r.Name+": "+r.LastError)
				}
			}
		}
		if len(bad) > 0 {
			t.Fatalf("alert rules failing in Prometheus: %v", bad)
		}
		if n == want && ok == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rules loaded, %d evaluated ok", n, want, ok)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

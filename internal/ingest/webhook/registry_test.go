package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// TestEveryProviderIsComplete: a registered provider has everything the
// rest of bounced needs besides its file: a route in openapi.yaml (HEAD
// too when it probes), fixtures in testdata (the signed-fixture, golden
// and fuzz tests' seeds), its settings and its event types in the README.
func TestEveryProviderIsComplete(t *testing.T) {
	t.Parallel()
	spec, err := os.ReadFile("../../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeTable(t, readme)
	all := fixtures(t)
	for _, name := range Providers() {
		t.Run(name, func(t *testing.T) {
			s := registry[name]
			path := "\n  /v1/webhooks/" + name + ":\n"
			i := bytes.Index(spec, []byte(path))
			if i < 0 {
				t.Errorf("openapi.yaml has no path /v1/webhooks/%s", name)
			} else {
				item := spec[i+len(path)-1:]
				if end := bytes.Index(item, []byte("\n  /")); end >= 0 {
					item = item[:end]
				}
				if !bytes.Contains(item, []byte("\n    post:")) {
					t.Errorf("openapi.yaml: /v1/webhooks/%s has no post", name)
				}
				if bytes.Contains(item, []byte("\n    head:")) != s.probe {
					t.Errorf("openapi.yaml: /v1/webhooks/%s head operation present = %v, want %v", name, !s.probe, s.probe)
				}
			}
			if len(all[name]) == 0 {
				t.Errorf("testdata/%s has no fixtures (the signed-fixture, golden and fuzz tests need them)", name)
			}
			for _, f := range all[name] {
				golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".golden.json"
				if _, err := os.Stat(golden); err != nil {
					t.Errorf("%s has no golden file (go test ./internal/ingest/webhook -update)", f)
				}
			}
			for _, st := range s.settings {
				if env := config.WebhookSettingEnv(name, st.Name); !bytes.Contains(readme, []byte(env)) {
					t.Errorf("README.md does not mention %s", env)
				}
			}
			if len(rows[name]) == 0 {
				t.Errorf("README.md's table of event types has no row for %s", name)
			}
			// The test signer's settings configure the provider.
			p, err := s.build(&builder{settings: s.testSettings(testKeys(t)), window: time.Minute})
			if err != nil || p == nil {
				t.Errorf("build(test settings) = %v, %v; want a configured provider", p, err)
			}
		})
	}
}

// categories are what the README's table says an event becomes.
var categories = []string{"hard", "soft", "sender", "delay", "complaint", "delivery", "sent", "unsubscribe", "auto-reply", "ignored"}

// category is what ev becomes, in the table's words.
func category(ev parse.Event) string {
	switch ev.Type {
	case parse.EventBounce:
		return string(ev.Class)
	case parse.EventAutoReply:
		return "auto-reply"
	}
	return string(ev.Type)
}

// tableRow is one row of the README's table of event types.
type tableRow struct {
	types      []string
	categories []string
	line       string
}

// readmeTable reads the table of the README's section "What each event
// type becomes", by provider.
func readmeTable(t *testing.T, readme []byte) map[string][]tableRow {
	t.Helper()
	_, section, ok := bytes.Cut(readme, []byte("\n### What each event type becomes\n"))
	if !ok {
		t.Fatal(`README.md has no section "What each event type becomes"`)
	}
	if end := bytes.Index(section, []byte("\n## ")); end >= 0 {
		section = section[:end]
	}
	code := regexp.MustCompile("`([^`]+)`")
	out := map[string][]tableRow{}
	for _, line := range strings.Split(string(section), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		provider := strings.Trim(strings.TrimSpace(cells[1]), "`")
		row := tableRow{line: line}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			row.types = append(row.types, m[1])
		}
		for _, c := range strings.Split(cells[3], ",") {
			c = strings.TrimSpace(c)
			if !slices.Contains(categories, c) {
				t.Errorf("README.md: %q is not one of %v in %s", c, categories, line)
			}
			row.categories = append(row.categories, c)
		}
		out[provider] = append(out[provider], row)
	}
	if len(out) == 0 {
		t.Fatal("README.md's table of event types has no rows")
	}
	return out
}

// typeMatches compares a provider's type with a table entry, which may
// end in "*".
func typeMatches(entry, typ string) bool {
	if prefix, ok := strings.CutSuffix(entry, "*"); ok {
		return strings.HasPrefix(typ, prefix)
	}
	return entry == typ
}

// TestReadmeTableMatchesDecoders keeps the README's table of event types
// in step with what the decoders do with every fixture: each row's types
// become exactly the outcomes it names (each seen in some fixture), every
// type a fixture holds has its row, and no documented type is unknown to
// its decoder.
func TestReadmeTableMatchesDecoders(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeTable(t, readme)
	for provider := range rows {
		if registry[provider] == nil {
			t.Errorf("README.md's table has rows for %s, which is no provider", provider)
		}
	}
	for provider, files := range fixtures(t) {
		seen := map[string]map[string]bool{} // type -> categories
		unknown := map[string]bool{}
		note := func(typ, cat string) {
			if seen[typ] == nil {
				seen[typ] = map[string]bool{}
			}
			seen[typ][cat] = true
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decode(provider, body, testNow)
			if err != nil {
				continue // a fixture of a payload that is not the provider's
			}
			for i, ev := range d.events {
				note(d.origin[i], category(ev))
			}
			for _, typ := range d.ignoredTypes {
				note(typ, "ignored")
			}
			for _, typ := range d.unknownTypes {
				unknown[typ] = true
			}
		}
		covered := map[string]bool{}
		for _, row := range rows[provider] {
			got := map[string]bool{}
			for _, entry := range row.types {
				matched := false
				for typ, cats := range seen {
					if typeMatches(entry, typ) {
						matched, covered[typ] = true, true
						maps.Copy(got, cats)
					}
				}
				for typ := range unknown {
					if typeMatches(entry, typ) {
						t.Errorf("%s: README.md documents %s, which the decoder does not know", provider, typ)
					}
				}
				if !matched {
					t.Errorf("%s: no fixture holds %s (README.md: %s)", provider, entry, row.line)
				}
			}
			want := slices.Sorted(slices.Values(row.categories))
			if have := slices.Sorted(maps.Keys(got)); !slices.Equal(have, want) {
				t.Errorf("%s %v: the fixtures become %v, README.md says %v", provider, row.types, have, want)
			}
		}
		for typ := range seen {
			if !covered[typ] {
				t.Errorf("%s: README.md's table has no row for %s, which fixtures hold (it becomes %v)",
					provider, typ, slices.Sorted(maps.Keys(seen[typ])))
			}
		}
	}
}

var (
	testKeysOnce sync.Once
	testKeysVal  TestKeys
)

// testKeys are keys for every provider's test settings, made once.
func testKeys(t *testing.T) TestKeys {
	t.Helper()
	testKeysOnce.Do(func() {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKeysVal = TestKeys{Secret: "test-secret", ECDSA: ec, RSA: rk, CertURL: "https://sns.test.example/cert.pem"}
	})
	return testKeysVal
}

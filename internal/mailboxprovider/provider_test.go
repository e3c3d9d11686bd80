package mailboxprovider

import (
	"regexp"
	"slices"
	"testing"
)

func TestForDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, domain string
		want         Provider
		ok           bool
	}{
		{"gmail", "gmail.com", Google, true},
		{"upper case and final dot", "GMail.COM.", Google, true},
		{"hotmail", "hotmail.co.uk", Microsoft, true},
		{"aol is received by yahoo", "aol.com", Yahoo, true},
		{"icloud alias", "me.com", Apple, true},
		{"web.de", "web.de", GMX, true},
		{"qq", "qq.com", Tencent, true},
		{"163", "163.com", NetEase, true},
		{"a company", "example.com", "", false},
		{"a subdomain is not the provider's", "mail.gmail.com", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, ok := ForDomain(tt.domain); got != tt.want || ok != tt.ok {
				t.Errorf("ForDomain(%q) = %q, %v, want %q, %v", tt.domain, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestForMX(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		hosts []string
		want  Provider
	}{
		{"gmail", []string{"gmail-smtp-in.l.google.com."}, Google},
		{"google workspace", []string{"aspmx.l.google.com", "alt1.aspmx.l.google.com"}, Google},
		{"google workspace, new single host", []string{"smtp.google.com."}, Google},
		{"old google apps backup hosts", []string{"aspmx2.googlemail.com"}, Google},
		{"microsoft 365", []string{"contoso-com.mail.protection.outlook.com."}, Microsoft},
		{"microsoft 365 with dnssec", []string{"contoso-com.o-v1.mx.microsoft."}, Microsoft},
		{"outlook.com", []string{"live-com.olc.protection.outlook.com"}, Microsoft},
		{"aol", []string{"mx-aol.mail.gm0.yahoodns.net."}, Yahoo},
		{"icloud custom domain", []string{"mx01.mail.icloud.com.", "mx02.mail.icloud.com."}, Apple},
		{"fastmail custom domain", []string{"in1-smtp.messagingengine.com"}, Fastmail},
		{"proofpoint gateway", []string{"mx0a-001b2d01.pphosted.com"}, Proofpoint},
		{"upper case", []string{"ASPMX.L.GOOGLE.COM"}, Google},
		{"first known host decides", []string{"mx.example.net", "aspmx.l.google.com"}, Google},
		{"own servers", []string{"mx1.example.com", "mx2.example.com"}, Other},
		{"a look-alike is not the provider", []string{"mx.notgoogle.com"}, Other},
		{"mail.com's suffix needs a dot", []string{"mx.gmail.company.com"}, Other},
		{"null mx", []string{"."}, Other},
		{"no hosts", nil, Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ForMX(tt.hosts); got != tt.want {
				t.Errorf("ForMX(%q) = %q, want %q", tt.hosts, got, tt.want)
			}
		})
	}
}

// TestTablesAreBounded: every value the tables give is one of Known, each
// fit for a metric label, and Known lists each once.
func TestTablesAreBounded(t *testing.T) {
	t.Parallel()
	label := regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	all := Known()
	for i, p := range all {
		if !label.MatchString(string(p)) {
			t.Errorf("Known()[%d] = %q, not a label value", i, p)
		}
		if slices.Index(all, p) != i {
			t.Errorf("Known() lists %q twice", p)
		}
		if !p.Valid() {
			t.Errorf("%q.Valid() = false", p)
		}
	}
	for d, p := range byDomain {
		if !p.Valid() || p == Other || p == Unknown {
			t.Errorf("byDomain[%q] = %q", d, p)
		}
		if clean(d) != d {
			t.Errorf("byDomain key %q is not clean", d)
		}
	}
	for h, p := range byMX {
		if !p.Valid() || p == Other || p == Unknown {
			t.Errorf("byMX[%q] = %q", h, p)
		}
	}
	domains, providers := TableDomains()
	if len(domains) != len(byDomain) || len(providers) != len(domains) {
		t.Errorf("TableDomains() = %d domains, %d providers, want %d", len(domains), len(providers), len(byDomain))
	}
	if Provider("free text").Valid() || Provider("").Valid() {
		t.Error("Valid accepts a name not in the table")
	}
}

func FuzzForMX(f *testing.F) {
	for _, s := range []string{"aspmx.l.google.com.", ".", "", "a..b", "x.mail.com", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if p := ForMX([]string{host}); !p.Valid() {
			t.Errorf("ForMX(%q) = %q, not Valid", host, p)
		}
		if p, ok := ForDomain(host); ok && !p.Valid() {
			t.Errorf("ForDomain(%q) = %q, not Valid", host, p)
		}
	})
}

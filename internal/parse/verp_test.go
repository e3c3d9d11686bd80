package parse

import (
	"strings"
	"testing"
	"time"
)

func TestVERPDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		v           VERP
		addr        string
		rcpt, token string
		ok          bool
	}{
		{"plain", VERP{Prefix: "bounces"}, "bounces+user=example.com@bounce.example.net", "user@example.com", "", true},
		{"token", VERP{Prefix: "bounces"}, "bounces+user=example.com+c42@bounce.example.net", "user@example.com", "c42", true},
		{"plus in user", VERP{Prefix: "bounces"}, "bounces+user+tag=example.com@bounce.example.net", "user+tag@example.com", "", true},
		{"case of prefix", VERP{Prefix: "bounces"}, "Bounces+User=Example.COM@bounce.example.net", "User@example.com", "", true},
		{"dash separator", VERP{Prefix: "b", Separator: '-'}, "b-user=my-domain.example@bounce.example.net", "user@my-domain.example", "", true},
		{"other prefix", VERP{Prefix: "bounces"}, "returns+user=example.com@bounce.example.net", "", "", false},
		{"no equals", VERP{Prefix: "bounces"}, "bounces+user@bounce.example.net", "", "", false},
		{"no domain dot", VERP{Prefix: "bounces"}, "bounces+user=localhost@bounce.example.net", "", "", false},
		{"just prefix", VERP{Prefix: "bounces"}, "bounces@bounce.example.net", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcpt, token, ok := tt.v.Decode(tt.addr)
			if rcpt != tt.rcpt || token != tt.token || ok != tt.ok {
				t.Errorf("%+v.Decode(%q) = %q, %q, %v, want %q, %q, %v", tt.v, tt.addr, rcpt, token, ok, tt.rcpt, tt.token, tt.ok)
			}
		})
	}
}

// TestVERPOneOrder: the CLI and the service read the VERP address of a
// message the same way, through ParseWithOptions. Before, the service
// looked at Delivered-To first and the CLI at X-Original-To, so this
// message named a@ to one and b@ to the other; X-Original-To, the
// envelope recipient before any alias rewrote it, wins.
func TestVERPOneOrder(t *testing.T) {
	t.Parallel()
	v := VERP{Prefix: "bounces", Separator: '+'}
	cases := []struct {
		name, raw string
		envelope  []string
		verp      VERP
		want      *VERPMatch
	}{
		{"services disagreed on it", "Delivered-To: bounces+a=example.com@b.example.net\nX-Original-To: bounces+b=example.com@b.example.net\n" +
			"From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nSorry.\n", nil, v,
			&VERPMatch{Recipient: "b@example.com", Field: "X-Original-To", Used: true}},
		{"envelope first", "X-Original-To: bounces+b=example.com@b.example.net\n\nSorry.\n", []string{"postmaster@b.example.net", "bounces+e=example.com+t1@b.example.net"}, v,
			&VERPMatch{Recipient: "e@example.com", Token: "t1", Field: "envelope", Used: true}},
		{"delivered-to", "Delivered-To: bounces+jo=example.com@b.example.net\nTo: someone@example.org\n\nbody", nil, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "Delivered-To", Used: true}},
		{"to with display name and token", "To: \"Bounces\" <bounces+jo=example.com+c9@b.example.net>\n\nbody", nil, v,
			&VERPMatch{Recipient: "jo@example.com", Token: "c9", Field: "To", Used: true}},
		{"every field of a name", "Delivered-To: postmaster@b.example.net\nDelivered-To: bounces+jo=example.com@b.example.net\n\nbody", nil, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "Delivered-To", Used: true}},
		{"x-original-to wins over to", "X-Original-To: bounces+a=example.com@b.example.net\nTo: bounces+b=example.com@b.example.net\n\n", nil, v,
			&VERPMatch{Recipient: "a@example.com", Field: "X-Original-To", Used: true}},
		{"bare address without brackets", "Envelope-To: bounces+jo=example.com@b.example.net\n\nx", nil, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "Envelope-To", Used: true}},
		{"crlf", "Delivered-To: bounces+jo=example.com@b.example.net\r\n\r\nbody", nil, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "Delivered-To", Used: true}},
		{"report names its own recipient", "To: bounces+jo=example.com@b.example.net\n" + dsnFor("named@example.com"), nil, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "To", Used: false}},
		{"no verp address", "To: postmaster@example.net\n\nbounces+jo=example.com@b.example.net", nil, v, nil},
		{"other prefix", "To: returns+jo=example.com@b.example.net\n\nx", nil, v, nil},
		{"verp off", "To: bounces+jo=example.com@b.example.net\n\nx", nil, VERP{}, nil},
		{"no header, envelope only", "\x00\x01\x02", []string{"bounces+jo=example.com@b.example.net"}, v,
			&VERPMatch{Recipient: "jo@example.com", Field: "envelope", Used: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, _ := ParseWithOptions([]byte(tc.raw), Options{VERP: tc.verp, EnvelopeTo: tc.envelope})
			if (rep.VERP == nil) != (tc.want == nil) || rep.VERP != nil && *rep.VERP != *tc.want {
				t.Fatalf("ParseWithOptions(%q).VERP = %+v, want %+v", tc.raw, rep.VERP, tc.want)
			}
			if tc.want != nil && tc.want.Used {
				if len(rep.Recipients) != 1 || rep.Recipients[0].Address != tc.want.Recipient {
					t.Errorf("recipients = %+v, want only %s", rep.Recipients, tc.want.Recipient)
				}
			}
		})
	}
}

// dsnFor is a minimal RFC 3464 report naming addr.
func dsnFor(addr string) string {
	return "From: MAILER-DAEMON@mx.example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n" +
		"--B\nContent-Type: text/plain\n\nfailed\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n" +
		"Final-Recipient: rfc822; " + addr + "\nAction: failed\nStatus: 5.1.1\n--B--\n"
}

// TestVERPStandIn: what a message sent back to a VERP address records
// when it names no recipient itself.
func TestVERPStandIn(t *testing.T) {
	t.Parallel()
	const to = "To: bounces+verp=example.com@b.example.net\n"
	cases := []struct {
		name   string
		raw    string
		kind   Kind
		reason Reason
		class  Class
		status Status
	}{
		{"status in the text", to + "Subject: x\n\nHi.\nRemote said: 550 5.1.1 no such user\n", KindBounce, ReasonUserUnknown, ClassHard, "5.1.1"},
		{"reply code at a line start", to + "Subject: x\n\nWe tried.\n552 mailbox full\n", KindBounce, ReasonMailboxFull, ClassSoft, "5.2.2"},
		{"no evidence: soft", to + "Subject: x\n\nSorry, it did not work out.\n", KindBounce, ReasonOther, ClassSoft, "5.0.0"},
		{"success code is no evidence", to + "Subject: x\n\n250 2.0.0 ok\n", KindBounce, ReasonOther, ClassSoft, "2.0.0"},
		{"recipient without address keeps its status", to + "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n" +
			"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n" +
			"Final-Recipient: rfc822; postmaster\nAction: failed\nStatus: 5.2.2\n" +
			"Diagnostic-Code: smtp; 552 5.2.2 mailbox full\n--B--\n", KindBounce, ReasonMailboxFull, ClassSoft, "5.2.2"},
		{"a delay never hard", to + "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n" +
			"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n" +
			"Final-Recipient: rfc822; postmaster\nAction: delayed\nStatus: 5.1.1\n--B--\n", KindDelay, "", ClassSoft, "5.1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, _ := ParseWithOptions([]byte(tc.raw), Options{VERP: VERP{Prefix: "bounces"}})
			if rep.Kind != tc.kind || len(rep.Recipients) != 1 || rep.VERP == nil || !rep.VERP.Used {
				t.Fatalf("ParseWithOptions() = kind %s, recipients %+v, verp %+v; want %s with the VERP recipient", rep.Kind, rep.Recipients, rep.VERP, tc.kind)
			}
			r := rep.Recipients[0]
			if r.Address != "verp@example.com" || tc.reason != "" && r.Reason != tc.reason || r.Class != tc.class || r.Status != tc.status {
				t.Errorf("recipient = %+v; want reason %s, class %s, status %q", r, tc.reason, tc.class, tc.status)
			}
			if r.Suppress != r.Class.Suppresses() {
				t.Errorf("suppress = %t for class %s", r.Suppress, r.Class)
			}
			if evs := Events(rep, time.Now()); len(evs) != 1 || evs[0].Address != "verp@example.com" {
				t.Errorf("Events() = %+v, want one for the VERP recipient", evs)
			}
		})
	}
}

func FuzzVERP(f *testing.F) {
	f.Add([]byte("Delivered-To: bounces+jo=example.com@b.example.net\n\nx"), "")
	f.Add([]byte("To: \"a\" <bounces+jo=example.com+t@b.example.net>, b@c\r\n\r\n"), "bounces+x=example.org@b")
	f.Add([]byte("To: =?utf-8?q?x?= <\n"), "")
	f.Add([]byte("To: bounces+a=example.com@b.example.net, bounces+b=example.org+t@b.example.net\n\n550 unknown\n"), "")
	v := VERP{Prefix: "bounces", Separator: '+'}
	f.Fuzz(func(t *testing.T, raw []byte, envelope string) {
		rep, _ := ParseWithOptions(raw, Options{VERP: v, EnvelopeTo: []string{envelope}})
		if rep.VERP == nil {
			return
		}
		if _, err := NormalizeAddress(rep.VERP.Recipient); err != nil {
			t.Fatalf("recipient %q is not a normalised address: %v", rep.VERP.Recipient, err)
		}
		matches := rep.VERPs
		if len(matches) == 0 {
			matches = []VERPMatch{*rep.VERP}
		}
		if len(matches) == 1 && len(rep.VERPs) != 0 || matches[0] != *rep.VERP {
			t.Fatalf("VERP %+v, VERPs %+v: want VERPs only for several, VERP first", rep.VERP, rep.VERPs)
		}
		if !rep.VERP.Used || strings.HasPrefix(string(raw), "From ") {
			return // an mbox's messages each read their own
		}
		if len(rep.Recipients) != len(matches) {
			t.Fatalf("VERP used, recipients %+v for %+v", rep.Recipients, matches)
		}
		for i, m := range matches {
			if !m.Used || rep.Recipients[i].Address != m.Recipient {
				t.Fatalf("VERP used, recipient %d %+v for %+v", i, rep.Recipients[i], m)
			}
		}
	})
}

// TestVERPSeveral: a message sent to several VERP addresses at once (an
// SMTP transaction with several RCPT TO, one To list) is about each of
// their recipients; only the first was read once.
func TestVERPSeveral(t *testing.T) {
	t.Parallel()
	v := VERP{Prefix: "bounces"}
	anon := "From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\n550 mailbox unavailable\n"
	cases := []struct {
		name, raw  string
		envelope   []string
		recipients []string
		verps      int
		used       bool
	}{
		{"two envelope recipients", anon, []string{"bounces+a=example.com+t1@b.example.net", "postmaster@b.example.net", "bounces+b=example.org+t2@b.example.net"},
			[]string{"a@example.com", "b@example.org"}, 2, true},
		{"one To list", "To: bounces+a=example.com@b.example.net, bounces+b=example.org@b.example.net\n" + anon, nil,
			[]string{"a@example.com", "b@example.org"}, 2, true},
		{"the first field of a name only", "Delivered-To: bounces+a=example.com@b.example.net\nDelivered-To: bounces+b=example.org@b.example.net\n" + anon, nil,
			[]string{"a@example.com"}, 0, true},
		{"one recipient under two tokens", anon, []string{"bounces+a=example.com+t1@b.example.net", "bounces+A=example.com+t2@b.example.net"},
			[]string{"a@example.com"}, 0, true},
		{"a report naming its own recipient", dsnFor("named@example.com"), []string{"bounces+a=example.com@b.example.net", "bounces+b=example.org@b.example.net"},
			[]string{"named@example.com"}, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, _ := ParseWithOptions([]byte(tc.raw), Options{VERP: v, EnvelopeTo: tc.envelope})
			var got []string
			for _, r := range rep.Recipients {
				got = append(got, r.Address)
				if tc.used && (r.Status != rep.Recipients[0].Status || r.Reason != rep.Recipients[0].Reason || r.Action != ActionFailed) {
					t.Errorf("stand-in %+v differs from %+v", r, rep.Recipients[0])
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.recipients, " ") {
				t.Errorf("recipients = %v, want %v", got, tc.recipients)
			}
			if len(rep.VERPs) != tc.verps || rep.VERP == nil || rep.VERP.Used != tc.used {
				t.Fatalf("VERP %+v VERPs %+v, want %d listed, used %v", rep.VERP, rep.VERPs, tc.verps, tc.used)
			}
			for _, m := range rep.VERPs {
				if m.Used != tc.used {
					t.Errorf("VERPs %+v: used %v, want %v", rep.VERPs, m.Used, tc.used)
				}
			}
		})
	}
}

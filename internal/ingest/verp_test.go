package ingest

import (
	"testing"

	"github.com/bounced/bounced/internal/parse"
)

func TestVERPFromHeaders(t *testing.T) {
	t.Parallel()
	v := parse.VERP{Prefix: "bounces", Separator: '+'}
	cases := []struct {
		name, raw        string
		verp             parse.VERP
		recipient, token string
		ok               bool
	}{
		{"delivered-to", "Delivered-To: bounces+jo=example.com@b.example.net\nTo: someone@example.org\n\nbody", v, "jo@example.com", "", true},
		{"to with display name and token", "To: \"Bounces\" <bounces+jo=example.com+c9@b.example.net>\n\nbody", v, "jo@example.com", "c9", true},
		{"x-original-to wins over to", "X-Original-To: bounces+a=example.com@b.example.net\nTo: bounces+b=example.com@b.example.net\n\n", v, "a@example.com", "", true},
		{"bare address without brackets", "Envelope-To: bounces+jo=example.com@b.example.net\n\n", v, "jo@example.com", "", true},
		{"crlf", "Delivered-To: bounces+jo=example.com@b.example.net\r\n\r\nbody", v, "jo@example.com", "", true},
		{"no verp address", "To: postmaster@example.net\n\nbounces+jo=example.com@b.example.net", v, "", "", false},
		{"other prefix", "To: returns+jo=example.com@b.example.net\n\n", v, "", "", false},
		{"verp off", "To: bounces+jo=example.com@b.example.net\n\n", parse.VERP{}, "", "", false},
		{"garbage", "\x00\x01\x02", v, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, tok, ok := verpFromHeaders(tc.verp, []byte(tc.raw))
			if r != tc.recipient || tok != tc.token || ok != tc.ok {
				t.Errorf("verpFromHeaders(%q) = %q, %q, %t; want %q, %q, %t", tc.raw, r, tok, ok, tc.recipient, tc.token, tc.ok)
			}
		})
	}
}

func TestUseVERPRecipient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		rep    parse.Report
		raw    string
		used   bool
		kind   parse.Kind
		reason parse.Reason
		class  parse.Class
		status parse.Status
	}{
		{name: "report names its recipient", rep: parse.Report{Kind: parse.KindBounce, Recipients: []parse.Recipient{{Address: "x@example.com", Reason: parse.ReasonMailboxFull, Class: parse.ClassSoft}}},
			used: false, kind: parse.KindBounce, reason: parse.ReasonMailboxFull, class: parse.ClassSoft},
		{name: "status in the text", rep: parse.Report{Kind: parse.KindNotBounce}, raw: "Subject: x\n\nHi.\nRemote said: 550 5.1.1 no such user\n",
			used: true, kind: parse.KindBounce, reason: parse.ReasonUserUnknown, class: parse.ClassHard, status: "5.1.1"},
		{name: "reply code at a line start", rep: parse.Report{Kind: parse.KindNotBounce}, raw: "Subject: x\n\nWe tried.\n552 mailbox full\n",
			used: true, kind: parse.KindBounce, class: parse.ClassSoft},
		{name: "no evidence: soft", rep: parse.Report{Kind: parse.KindNotBounce}, raw: "Subject: x\n\nSorry, it did not work out.\n",
			used: true, kind: parse.KindBounce, reason: parse.ReasonOther, class: parse.ClassSoft},
		{name: "success code is no evidence", rep: parse.Report{Kind: parse.KindNotBounce}, raw: "Subject: x\n\n250 2.0.0 ok\n",
			used: true, kind: parse.KindBounce, reason: parse.ReasonOther, class: parse.ClassSoft, status: "2.0.0"},
		{name: "delay never hard", rep: parse.Report{Kind: parse.KindDelay}, raw: "Subject: x\n\n5.1.1\n",
			used: true, kind: parse.KindDelay, class: parse.ClassSoft, status: "5.1.1"},
		{name: "complaint", rep: parse.Report{Kind: parse.KindComplaint}, used: true, kind: parse.KindComplaint, reason: parse.ReasonComplaint, class: parse.ClassComplaint},
		{name: "auto reply", rep: parse.Report{Kind: parse.KindAutoReply}, used: true, kind: parse.KindAutoReply, reason: parse.ReasonAutoReply, class: parse.ClassNone},
		{name: "recipient without address keeps its status", rep: parse.Report{Kind: parse.KindBounce, Recipients: []parse.Recipient{{Status: "5.2.2", Diagnostic: "mailbox full"}}},
			used: true, kind: parse.KindBounce, reason: parse.ReasonMailboxFull, class: parse.ClassSoft, status: "5.2.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := tc.rep
			rep.Recipients = append([]parse.Recipient(nil), tc.rep.Recipients...)
			used := useVERPRecipient(&rep, "verp@example.com", []byte(tc.raw))
			if used != tc.used || rep.Kind != tc.kind || len(rep.Recipients) != 1 {
				t.Fatalf("useVERPRecipient(%s) = %t, kind %s, %d recipients; want %t, %s, 1", tc.name, used, rep.Kind, len(rep.Recipients), tc.used, tc.kind)
			}
			r := rep.Recipients[0]
			if tc.used && r.Address != "verp@example.com" {
				t.Errorf("address = %q, want the VERP recipient", r.Address)
			}
			if tc.reason != "" && r.Reason != tc.reason || r.Class != tc.class || tc.status != "" && r.Status != tc.status {
				t.Errorf("recipient = %+v; want reason %s, class %s, status %s", r, tc.reason, tc.class, tc.status)
			}
			if r.Suppress != r.Class.Suppresses() {
				t.Errorf("suppress = %t for class %s", r.Suppress, r.Class)
			}
		})
	}
}

func FuzzVERPFromHeaders(f *testing.F) {
	f.Add([]byte("Delivered-To: bounces+jo=example.com@b.example.net\n\nx"))
	f.Add([]byte("To: \"a\" <bounces+jo=example.com+t@b.example.net>, b@c\r\n\r\n"))
	f.Add([]byte("To: =?utf-8?q?x?= <\n"))
	v := parse.VERP{Prefix: "bounces", Separator: '+'}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, _, ok := verpFromHeaders(v, raw)
		if ok {
			if _, err := parse.NormalizeAddress(r); err != nil {
				t.Fatalf("recipient %q is not a normalised address: %v", r, err)
			}
		}
		rep := &parse.Report{Kind: parse.KindNotBounce}
		useVERPRecipient(rep, "verp@example.com", raw)
		if len(rep.Recipients) != 1 {
			t.Fatalf("%d recipients", len(rep.Recipients))
		}
	})
}

package parse

import "testing"

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

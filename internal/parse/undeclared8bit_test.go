package parse

import "testing"

func TestToUTF8Undeclared8bit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, charset string
		in            []byte
		want          string
	}{
		{"latin1 undeclared", "", []byte("Empf\xe4nger unbekannt"), "Empfänger unbekannt"},
		{"windows-1252 only bytes", "", []byte("\x93quoted\x94 \x96 \x80 5"), "“quoted” – € 5"},
		{"declared us-ascii", "us-ascii", []byte("Gr\xfc\xdfe"), "Grüße"},
		{"declared utf-8, mixed", "utf-8", []byte("M\xc3\xa4rz und M\xe4rz"), "März und März"},
		{"valid utf-8 kept", "", []byte("Empfänger ✓"), "Empfänger ✓"},
		{"a replacement character stays one", "", []byte("a\xef\xbf\xbdb\xe9"), "a\ufffdbé"},
		{"declared latin1", "iso-8859-1", []byte("\xe9t\xe9"), "été"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := toUTF8(tt.in, tt.charset); got != tt.want {
				t.Errorf("toUTF8(%q, %q) = %q, want %q", tt.in, tt.charset, got, tt.want)
			}
		})
	}
	if got, want := decodeWords("M\xe4rz =?utf-8?q?Gr=C3=BC=C3=9Fe?="), "März Grüße"; got != want {
		t.Errorf("decodeWords() = %q, want %q", got, want)
	}
}

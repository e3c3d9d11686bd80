package parse

import (
	"testing"
	"unicode"
)

// foldsOntoASCII lists the non-ASCII code points whose Unicode case
// mapping or simple folding lands on an ASCII letter (the Kelvin sign K
// onto k, the long s onto s, the dotted and dotless i onto i and I).
func foldsOntoASCII() map[rune]rune {
	out := map[rune]rune{}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		for _, m := range []rune{unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r)} {
			if m < 0x80 && unicode.IsLetter(m) {
				out[r] = m
			}
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < 0x80 {
				out[r] = f
			}
		}
	}
	return out
}

// TestAddressKeyFoldsOnlyASCII: mail systems compare local parts without
// ASCII case, never with Unicode case, so a local part written with a
// character whose case maps onto ASCII is another mailbox: the Kelvin
// sign in "\u212Aate" must not key (and so suppress) kate.
func TestAddressKeyFoldsOnlyASCII(t *testing.T) {
	t.Parallel()
	pairs := foldsOntoASCII()
	for _, r := range []rune{'\u212A', '\u017F', '\u0130', '\u0131'} {
		if _, ok := pairs[r]; !ok {
			t.Errorf("U+%04X is not among the code points whose case maps onto ASCII %v", r, pairs)
		}
	}
	for r, ascii := range pairs {
		for _, local := range []string{string(r) + "ate", "k" + string(r)} {
			plain := []rune(local)
			for i := range plain {
				if plain[i] == r {
					plain[i] = ascii
				}
			}
			uni, err := NormalizeAddress(local + "@example.com")
			if err != nil {
				t.Fatalf("NormalizeAddress(%q) error %v", local+"@example.com", err)
			}
			for _, other := range []string{string(plain), string(unicode.ToLower(ascii)) + string(plain[1:]), string(unicode.ToUpper(ascii)) + string(plain[1:])} {
				asc, err := NormalizeAddress(other + "@example.com")
				if err != nil {
					t.Fatalf("NormalizeAddress(%q) error %v", other+"@example.com", err)
				}
				if AddressKey(uni) == AddressKey(asc) {
					t.Errorf("AddressKey(%q) = AddressKey(%q) = %q: U+%04X folded onto ASCII", uni, asc, AddressKey(uni), r)
				}
			}
		}
	}
}

func TestAddressKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"ASCII case folds", "Kate.Doe@Example.COM", "kate.doe@example.com"},
		{"Unicode local part keeps its case", "José.ÄRGER@example.com", "josé.Ärger@example.com"},
		{"Kelvin sign stays", "\u212Aate@example.com", "\u212Aate@example.com"},
		{"dotted capital I stays", "\u0130nes@example.com", "\u0130nes@example.com"},
		{"IDNA maps the domain", "kate@B\u00dcCHER.example", "kate@xn--bcher-kva.example"},
		{"IDNA maps the Kelvin sign in a domain", "kate@\u212Aexample.com", "kate@kexample.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			norm, err := NormalizeAddress(tt.in)
			if err != nil {
				t.Fatalf("NormalizeAddress(%q) error %v", tt.in, err)
			}
			if got := AddressKey(norm); got != tt.want {
				t.Errorf("AddressKey(NormalizeAddress(%q)) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

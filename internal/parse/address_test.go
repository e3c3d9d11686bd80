package parse

import (
	"errors"
	"testing"
)

func TestNormalizeAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"plain", "user@example.com", "user@example.com", nil},
		{"trims space", "  user@example.com \t", "user@example.com", nil},
		{"lowercases domain only", "John.Doe@Example.COM", "John.Doe@example.com", nil},
		{"rfc822 prefix", "rfc822; user@example.com", "user@example.com", nil},
		{"rfc822 prefix no space upper", "RFC822;User@Example.com", "User@example.com", nil},
		{"angle brackets", "<user@example.com>", "user@example.com", nil},
		{"display name", `"Doe, John" <john@example.com>`, "john@example.com", nil},
		{"rfc822 and brackets", "rfc822;<user@example.com>", "user@example.com", nil},
		{"trailing dot of domain", "user@example.com.", "user@example.com", nil},
		{"idna domain", "user@bücher.example", "user@xn--bcher-kva.example", nil},
		{"idna upper", "user@BÜCHER.example", "user@xn--bcher-kva.example", nil},
		{"utf8 local part kept", "josé@example.com", "josé@example.com", nil},
		{"plus tag kept", "user+tag@example.com", "user+tag@example.com", nil},
		{"no at", "userexample.com", "", ErrBadAddress},
		{"empty local", "@example.com", "", ErrBadAddress},
		{"empty domain", "user@", "", ErrBadAddress},
		{"empty", "", "", ErrBadAddress},
		{"space in domain", "user@exa mple.com", "", ErrBadAddress},
		{"invalid utf8", "us\xffer@example.com", "", ErrBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeAddress(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("NormalizeAddress(%q) = %q, %v, want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestAddressKeyComparesCaseInsensitively(t *testing.T) {
	t.Parallel()
	a, _ := NormalizeAddress("John.Doe@Example.com")
	b, _ := NormalizeAddress("john.doe@EXAMPLE.COM")
	if a == b {
		t.Fatalf("normalised forms should keep local-part case: %q == %q", a, b)
	}
	if AddressKey(a) != AddressKey(b) {
		t.Errorf("AddressKey(%q) = %q, AddressKey(%q) = %q, want equal", a, AddressKey(a), b, AddressKey(b))
	}
	if got := AddressDomain(a); got != "example.com" {
		t.Errorf("AddressDomain(%q) = %q, want example.com", a, got)
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"user@example.com", "rfc822; <A@B.C>", "x@bücher.example", `"a b"@c`, "@", ""} {
		f.Add(s)
	}
	for _, s := range corpusFieldValues(f, "Final-Recipient", "Original-Recipient", "To", "From") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeAddress(s)
		if err != nil {
			return
		}
		again, err := NormalizeAddress(got)
		if err != nil || again != got {
			t.Errorf("NormalizeAddress not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

package api

import (
	"strings"
	"testing"
)

// FuzzCSVCell: an exported cell never starts a formula, and importing it
// gives back exactly what was exported.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"", "=1+1", "'=x", "''+y", "'plain", "plain", "\tz", "\r", "@a@b", "-", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cell := csvCell(s)
		if cell != "" && strings.IndexByte("=+-@\t\r", cell[0]) >= 0 {
			t.Errorf("csvCell(%q) = %q starts a formula", s, cell)
		}
		if got := csvValue(cell); got != s {
			t.Errorf("csvValue(csvCell(%q)) = %q", s, got)
		}
	})
}

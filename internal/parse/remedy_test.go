package parse

import (
	"strings"
	"testing"
)

func TestSenderRemedyCoversEverySenderReason(t *testing.T) {
	t.Parallel()
	for _, r := range Reasons() {
		rem, ok := SenderRemedy(r)
		if ok != (r.Class() == ClassSender) {
			t.Errorf("SenderRemedy(%s) ok = %v, want %v (class %s)", r, ok, !ok, r.Class())
			continue
		}
		if !ok {
			continue
		}
		for name, text := range map[string]string{"title": rem.Title, "title_es": rem.TitleES, "meaning": rem.Meaning,
			"meaning_es": rem.MeaningES, "fix": rem.Fix, "fix_es": rem.FixES} {
			if strings.TrimSpace(text) == "" {
				t.Errorf("SenderRemedy(%s).%s is empty", r, name)
			}
		}
		if rem.Fix == rem.FixES || rem.Meaning == rem.MeaningES {
			t.Errorf("SenderRemedy(%s): the Spanish text is the English one", r)
		}
	}
}

func TestSenderFix(t *testing.T) {
	t.Parallel()
	auth, _ := SenderRemedy(ReasonAuthRequired)
	proto, _ := SenderRemedy(ReasonProtocolError)
	tests := []struct {
		name   string
		reason Reason
		status Status
		want   string // a word the English fix must hold; "" for no fix
	}{
		{"530 5.7.0 takes its reason's fix", ReasonAuthRequired, "5.7.0", auth.Fix},
		{"503 5.5.1 sequence", ReasonProtocolError, "5.5.1", "out of order"},
		{"SPF", ReasonAuthFailure, "5.7.23", "SPF record"},
		{"DMARC", ReasonAuthFailure, "5.7.26", "DMARC"},
		{"credentials", ReasonAuthFailure, "5.7.8", "password"},
		{"no code", ReasonProtocolError, "", proto.Fix},
		{"not a sender reason", ReasonUserUnknown, "5.1.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fix, fixES := SenderFix(tt.reason, tt.status)
			if tt.want == "" {
				if fix != "" || fixES != "" {
					t.Errorf("SenderFix(%s, %s) = %q, want none", tt.reason, tt.status, fix)
				}
				return
			}
			if !strings.Contains(fix, tt.want) || fixES == "" || fixES == fix {
				t.Errorf("SenderFix(%s, %s) = %q, %q; want a fix holding %q and its Spanish", tt.reason, tt.status, fix, fixES, tt.want)
			}
		})
	}
	// Every code with a fix of its own is registered and sender-side.
	for sd := range codeFixes {
		info, ok := catalog[sd]
		if !ok || info.Reason.Class() != ClassSender {
			t.Errorf("codeFixes[%s]: catalog entry %+v, want a registered sender-side code", sd, info)
		}
	}
}

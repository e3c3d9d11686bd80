package parse

import (
	"fmt"
	"strings"
	"testing"
)

func arfReport(feedbackType, extra string) []byte {
	return []byte(fmt.Sprintf("From: fbl@isp.example\nTo: fbl@example.org\nSubject: Report\n"+
		"Content-Type: multipart/report; report-type=feedback-report; boundary=F\n\n"+
		"--F\nContent-Type: text/plain\n\nA report.\n\n"+
		"--F\nContent-Type: message/feedback-report\n\nFeedback-Type: %s\nUser-Agent: Test/1\nVersion: 1\n%s\n"+
		"--F\nContent-Type: message/rfc822\n\nMessage-ID: <m@example.org>\nFrom: news@example.org\nTo: Reader <reader@isp.example>\nSubject: Hi\n\nHi\n--F--\n",
		feedbackType, extra))
}

func TestFeedbackReports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, feedbackType, extra string
		addrs                     []string
		reason                    Reason
		class                     Class
	}{
		{"abuse with original-rcpt-to", "abuse", "Original-Rcpt-To: <one@isp.example>\nOriginal-Rcpt-To: two@isp.example\nSource-IP: 192.0.2.1\nArrival-Date: Thu, 29 Apr 2021 23:34:45 +0000\n",
			[]string{"one@isp.example", "two@isp.example"}, ReasonComplaint, ClassComplaint},
		{"abuse, recipient from the returned message", "abuse", "", []string{"reader@isp.example"}, ReasonComplaint, ClassComplaint},
		{"fraud", "fraud", "", []string{"reader@isp.example"}, ReasonComplaint, ClassComplaint},
		{"virus", "virus", "", []string{"reader@isp.example"}, ReasonComplaint, ClassComplaint},
		{"other", "other", "", []string{"reader@isp.example"}, ReasonComplaint, ClassComplaint},
		{"opt-out", "opt-out", "Removal-Recipient: leave@isp.example\n", []string{"leave@isp.example"}, ReasonComplaint, ClassComplaint},
		{"not-spam never suppresses", "not-spam", "", []string{"reader@isp.example"}, ReasonDelivered, ClassNone},
		{"auth-failure blames the sender", "auth-failure", "Auth-Failure: dkim\n", []string{"reader@isp.example"}, ReasonAuthFailure, ClassSender},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Parse(arfReport(tt.feedbackType, tt.extra))
			if err != nil {
				t.Fatalf("Parse() error %v", err)
			}
			if rep.Kind != KindComplaint || rep.Feedback == nil || rep.Feedback.Type != tt.feedbackType || rep.Feedback.UserAgent != "Test/1" {
				t.Fatalf("Parse() = kind %s feedback %+v, want complaint of type %s", rep.Kind, rep.Feedback, tt.feedbackType)
			}
			if len(rep.Recipients) != len(tt.addrs) {
				t.Fatalf("Parse() recipients = %+v, want %v", rep.Recipients, tt.addrs)
			}
			for i, r := range rep.Recipients {
				if r.Address != tt.addrs[i] || r.Reason != tt.reason || r.Class != tt.class || r.Suppress != tt.class.Suppresses() {
					t.Errorf("recipient %d = %+v, want %s %s/%s", i, r, tt.addrs[i], tt.reason, tt.class)
				}
			}
			if tt.extra != "" && tt.name == "abuse with original-rcpt-to" &&
				(rep.Feedback.SourceIP != "192.0.2.1" || rep.ArrivalDate != "Thu, 29 Apr 2021 23:34:45 +0000") {
				t.Errorf("Parse() source ip %q arrival %q", rep.Feedback.SourceIP, rep.ArrivalDate)
			}
		})
	}
}

func TestFeedbackReportListID(t *testing.T) {
	t.Parallel()
	raw := []byte(strings.Replace(string(arfReport("abuse", "")), "Subject: Hi\n",
		"Subject: Hi\nList-Id: =?utf-8?q?Caf=C3=A9_news?=\n <news.example.org>\n", 1))
	rep, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse() error %v", err)
	}
	if rep.Original == nil || rep.Original.ListID != "Café news <news.example.org>" {
		t.Fatalf("Parse() original %+v, want List-Id %q", rep.Original, "Café news <news.example.org>")
	}
	if rep, _ := Parse(arfReport("abuse", "")); rep.Original == nil || rep.Original.ListID != "" {
		t.Errorf("Parse() without List-Id: original %+v, want no list id", rep.Original)
	}
}

package parse

import "testing"

// TestDecisionRule is the foundation's rule: recipient errors (5.1.x)
// suppress, transient failures are soft, and the sender's own protocol,
// authentication and relay errors never suppress the recipient.
func TestDecisionRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     Status
		reply      string
		diagnostic string
		reason     Reason
		class      Class
	}{
		{"user unknown", "5.1.1", "550", "550 5.1.1 <a@b>: Recipient address rejected: User unknown", ReasonUserUnknown, ClassHard},
		{"domain unknown", "5.1.2", "", "Host or domain name not found", ReasonDomainUnknown, ClassHard},
		{"bad syntax 5.1.3", "5.1.3", "553", "553 5.1.3 Bad recipient address syntax", ReasonBadSyntax, ClassHard},
		{"moved", "5.1.6", "551", "", ReasonHasMoved, ClassHard},
		{"null mx", "5.1.10", "556", "", ReasonDomainUnknown, ClassHard},
		{"mailbox full transient", "4.2.2", "452", "Mailbox full", ReasonMailboxFull, ClassSoft},
		{"transient user unknown stays soft", "4.1.1", "450", "User unknown in local table", ReasonUserUnknown, ClassSoft},
		{"greylisted", "4.7.1", "450", "Greylisted, try again", ReasonPolicyRejected, ClassSoft},
		{"503 need rcpt", "5.5.1", "503", "503 5.5.1 Error: need RCPT command", ReasonProtocolError, ClassSender},
		{"503 without status", "", "503", "503 Bad sequence of commands", ReasonProtocolError, ClassSender},
		{"503 5.5.2 syntax", "5.5.2", "503", "", ReasonProtocolError, ClassSender},
		{"530 auth required", "5.7.0", "530", "530 5.7.0 Must issue a STARTTLS command first", ReasonAuthRequired, ClassSender},
		// The enhanced code is the finer: 501 with X.7.1 is a refusal, not
		// the sender's syntax (IceWarp answers so; RFC 3463).
		{"501 with 5.7.1 is a policy", "5.7.1", "501", "501 5.7.1 Permission denied", ReasonPolicyRejected, ClassSoft},
		{"501 with 5.5.4 stays protocol", "5.5.4", "501", "501 5.5.4 Syntax error in parameters", ReasonProtocolError, ClassSender},
		{"501 with 5.7.0 stays protocol", "5.7.0", "501", "501 5.7.0 Bad command", ReasonProtocolError, ClassSender},
		{"501 without status stays protocol", "", "501", "501 Permission denied", ReasonProtocolError, ClassSender},
		// QUIRK(sendmail): it gives up with 4.4.7 after a 421, and names the
		// 502 that its pipelined DATA drew: that reply decided nothing.
		{"502 of another class than 4.4.7", "4.4.7", "502", "502 5.5.1 Missing RCPT TO command.", ReasonExpired, ClassSoft},
		{"must authenticate", "5.7.1", "550", "550 5.7.1 Must authenticate first", ReasonAuthRequired, ClassSender},
		{"535 bad credentials", "5.7.8", "535", "535 5.7.8 Authentication credentials invalid", ReasonAuthFailure, ClassSender},
		{"relay denied", "5.7.1", "554", "554 5.7.1 <a@b>: Relay access denied", ReasonRelayDenied, ClassSender},
		{"dmarc", "5.7.26", "550", "550 5.7.26 Unauthenticated email from example.org is not accepted", ReasonAuthFailure, ClassSender},
		{"spf", "5.7.23", "550", "", ReasonAuthFailure, ClassSender},
		{"5.4.4 alone is no proof the domain is gone", "5.4.4", "550", "", ReasonDomainUnknown, ClassSoft},
		{"generic code, unknown user at RCPT", "5.0.0", "550", "550 User unknown (in reply to RCPT TO command)", ReasonUserUnknown, ClassHard},
		{"generic code, unknown user at DATA is a filter", "5.0.0", "550", "550 User unknown (in reply to end of DATA command)", ReasonPolicyRejected, ClassSoft},
		{"generic code, unknown user at an unknown stage", "5.0.0", "550", "550 User unknown", ReasonPolicyRejected, ClassSoft},
		{"5.2.1 refined by the words at RCPT", "5.2.1", "550", "550 5.2.1 <a@b>... User Unknown (in reply to RCPT TO command)", ReasonUserUnknown, ClassHard},
		{"5.2.1 alone", "5.2.1", "550", "550 5.2.1 Mailbox disabled", ReasonMailboxDisabled, ClassSoft},
		{"5.1.1 refined by recipient preferences", "5.1.1", "550", "550 5.1.1 RCP-P2 Refused due to recipient preferences", ReasonPolicyRejected, ClassSoft},
		{"5.5.0 with 550 and an unknown recipient", "5.5.0", "550", "550 5.5.0 Requested action not taken: mailbox unavailable", ReasonUserUnknown, ClassHard},
		{"unable to route is ambiguous", "5.4.4", "", "Unable to route", ReasonDomainUnknown, ClassSoft},
		{"postfix NXDOMAIN", "5.4.4", "", "Host or domain name not found. Name service error for name=nx.example type=A: Host not found", ReasonDomainUnknown, ClassHard},
		{"postfix DNS TRY_AGAIN", "5.4.4", "", "Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again", ReasonNetworkError, ClassSoft},
		{"postfix malformed DNS reply", "4.4.3", "", "Name service error for name=example.org type=MX: Malformed or unexpected name server reply", ReasonNetworkError, ClassSoft},
		{"postfix access map", "5.7.1", "550", "550 5.7.1 <a@b>: Recipient address rejected: Access denied (in reply to RCPT TO command)", ReasonPolicyRejected, ClassSoft},
		{"exim ACL recipient rejected", "", "550", "550 Recipient address rejected: Access denied by policy (in reply to RCPT TO command)", ReasonPolicyRejected, ClassSoft},
		{"bare recipient address rejected", "5.0.0", "550", "550 <a@example.org>: Recipient address rejected. (in reply to RCPT TO command)", ReasonUserUnknown, ClassSoft},
		{"au's bare recipient address rejected", "5.0.0", "550", "550 <a@ezweb.ne.jp>: Recipient address rejected. (in reply to RCPT TO command)", ReasonUserUnknown, ClassHard},
		{"dead mailbox wording, German", "", "550", "550 Benutzer unbekannt (in reply to RCPT TO command)", ReasonUserUnknown, ClassHard},
		{"dead mailbox wording, French", "5.1.1", "550", "550 5.1.1 Adresse d au moins un destinataire invalide. Invalid recipient. OFR_416 [416]", ReasonUserUnknown, ClassHard},
		{"dead mailbox wording, Russian", "", "550", "550 Пользователь не найден (in reply to RCPT TO command)", ReasonUserUnknown, ClassHard},
		{"dead mailbox wording in a transient reply", "4.1.1", "450", "450 4.1.1 user does not exist", ReasonUserUnknown, ClassSoft},
		{"5.1.1 with a spam block alongside", "5.1.1", "550", "550 5.1.1 user unknown; your IP is listed in spamhaus", ReasonUserUnknown, ClassSoft},
		{"office365 directory edge blocking", "5.4.1", "550", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", ReasonUserUnknown, ClassHard},
		{"spf failure of the sender", "5.7.1", "550", "550 5.7.1 SPF check failed", ReasonAuthFailure, ClassSender},
		{"refused at MAIL FROM", "5.1.0", "553", "SMTP error from remote mail server after MAIL FROM:<s@example.org>: 553 5.1.0 bad sender", ReasonSenderRejected, ClassSender},
		{"blocked at connection", "", "554", "SMTP error from remote mail server after initial connection: 554 go away", ReasonSpamBlocked, ClassSoft},
		{"transient domain lookup", "4.0.0", "", "DNS Error: Domain name not found", ReasonNetworkError, ClassSoft},
		{"null mx", "5.1.10", "556", "556 5.1.10 Recipient address has null MX", ReasonDomainUnknown, ClassHard},
		{"generic code, text says nothing", "5.0.0", "550", "550 Requested action not taken", ReasonOther, ClassSoft},
		{"reply only", "", "550", "", ReasonOther, ClassSoft},
		{"success", "2.0.0", "250", "250 OK", ReasonDelivered, ClassNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reason, class := ClassifyStatus(tt.status, tt.reply, tt.diagnostic)
			if reason != tt.reason || class != tt.class {
				t.Errorf("ClassifyStatus(%q, %q, %q) = %s/%s, want %s/%s", tt.status, tt.reply, tt.diagnostic, reason, class, tt.reason, tt.class)
			}
			if class == ClassSender && class.Suppresses() {
				t.Errorf("sender class must never suppress")
			}
		})
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		code       Status
		reply      string
		registered bool
		class      Class
		suppress   bool
	}{
		{"5.1.3", "5.1.3", "", true, ClassHard, true},
		{"510", "5.1.0", "", true, ClassSoft, false},
		{"422", "4.2.2", "", true, ClassSoft, false},
		{"503", "5.5.1", "503", true, ClassSender, false},
		{"530", "5.7.0", "530", true, ClassSender, false},
		{"5.7.29", "5.7.29", "", true, ClassSender, false},
		{"5.1.10", "5.1.10", "", true, ClassHard, true},
		{"5.9.9", "5.9.9", "", false, ClassSoft, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			e, err := Explain(tt.in)
			if err != nil {
				t.Fatalf("Explain(%q) error %v", tt.in, err)
			}
			if e.Code != tt.code || e.ReplyCode != tt.reply || e.Registered != tt.registered || e.Class != tt.class || e.Suppress != tt.suppress {
				t.Errorf("Explain(%q) = code %s reply %q registered %v class %s suppress %v, want %s %q %v %s %v",
					tt.in, e.Code, e.ReplyCode, e.Registered, e.Class, e.Suppress, tt.code, tt.reply, tt.registered, tt.class, tt.suppress)
			}
			if e.Registered && (e.Meaning == "" || e.MeaningES == "" || e.TitleES == "") {
				t.Errorf("Explain(%q) lacks an English or Spanish meaning", tt.in)
			}
		})
	}
	if _, err := Explain("not a code"); err == nil {
		t.Error("Explain(\"not a code\") succeeded, want error")
	}
}

func TestCatalogComplete(t *testing.T) {
	t.Parallel()
	// RFC 3463's own codes, every subject's detail 0..max, plus the
	// later IANA additions the seeds call out.
	maxDetail := map[int]int{0: 0, 1: 8, 2: 4, 3: 5, 4: 7, 5: 5, 6: 5, 7: 7}
	for subj, max := range maxDetail {
		for d := 0; d <= max; d++ {
			st := Status("5." + itoa(subj) + "." + itoa(d))
			if _, ok := Lookup(st); !ok {
				t.Errorf("Lookup(%s) missing from catalog", st)
			}
		}
	}
	for _, st := range []Status{"5.1.10", "5.7.23", "5.7.24", "5.7.25", "5.7.26", "5.7.27", "5.7.28", "5.7.29"} {
		if _, ok := Lookup(st); !ok {
			t.Errorf("Lookup(%s) missing from catalog", st)
		}
	}
	for _, info := range Catalog() {
		if !info.Reason.Valid() {
			t.Errorf("catalog %s has invalid reason %q", info.Code, info.Reason)
		}
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

package parse

// replyCodes are the SMTP reply codes of RFC 5321 (and RFC 4954, RFC 7504
// for 53x and 521/556), each with the enhanced code servers conventionally
// pair it with. Class matters most: it is never changed by the mapping.
var replyCodes = map[string]struct {
	status  Status
	meaning string
}{
	"211": {"2.0.0", "System status or help reply"},
	"214": {"2.0.0", "Help message"},
	"220": {"2.0.0", "Service ready"},
	"221": {"2.0.0", "Service closing transmission channel"},
	"235": {"2.7.0", "Authentication succeeded"},
	"250": {"2.0.0", "Requested mail action okay, completed"},
	"251": {"2.1.5", "User not local; will forward"},
	"252": {"2.1.5", "Cannot verify the user, but will accept the message"},
	"421": {"4.3.2", "Service not available, closing transmission channel"},
	"450": {"4.2.0", "Mailbox unavailable (busy or temporarily blocked)"},
	"451": {"4.3.0", "Local error in processing"},
	"452": {"4.3.1", "Insufficient system storage"},
	"454": {"4.7.0", "Temporary authentication failure"},
	"455": {"4.5.4", "Server unable to accommodate parameters"},
	"500": {"5.5.2", "Syntax error, command unrecognized"},
	"501": {"5.5.4", "Syntax error in parameters or arguments"},
	"502": {"5.5.1", "Command not implemented"},
	"503": {"5.5.1", "Bad sequence of commands"},
	"504": {"5.5.4", "Command parameter not implemented"},
	"521": {"5.3.2", "Host does not accept mail"},
	"530": {"5.7.0", "Authentication required"},
	"534": {"5.7.9", "Authentication mechanism is too weak"},
	"535": {"5.7.8", "Authentication credentials invalid"},
	"538": {"5.7.11", "Encryption required for requested authentication mechanism"},
	"550": {"5.0.0", "Mailbox unavailable (not found, no access, or rejected by policy)"},
	"551": {"5.1.6", "User not local"},
	"552": {"5.2.2", "Exceeded storage allocation"},
	"553": {"5.1.3", "Mailbox name not allowed"},
	"554": {"5.0.0", "Transaction failed"},
	"555": {"5.5.4", "MAIL FROM/RCPT TO parameters not recognized or not implemented"},
	"556": {"5.1.10", "Domain does not accept mail"},
}

// StatusFromReply returns the enhanced code conventionally paired with an
// SMTP reply code, or "" when the reply code is not one RFC 5321 defines.
func StatusFromReply(reply string) Status {
	if rc, ok := replyCodes[reply]; ok {
		return rc.status
	}
	if len(reply) == 3 && isDigits(reply) && validClass(int(reply[0]-'0')) {
		return Status(reply[:1] + ".0.0")
	}
	return ""
}

// ReplyMeaning returns RFC 5321's text for a reply code, or "".
func ReplyMeaning(reply string) string { return replyCodes[reply].meaning }

package parse

// Reason is bounced's name for why a recipient was not delivered.
type Reason string

// Reasons. Each has one Class, given by Reason.Class.
const (
	ReasonUserUnknown     Reason = "user_unknown"
	ReasonDomainUnknown   Reason = "domain_unknown"
	ReasonBadSyntax       Reason = "bad_syntax"
	ReasonHasMoved        Reason = "has_moved"
	ReasonMailboxDisabled Reason = "mailbox_disabled"
	ReasonMailboxFull     Reason = "mailbox_full"
	ReasonMessageTooLarge Reason = "message_too_large"
	ReasonSpamBlocked     Reason = "spam_blocked"
	ReasonPolicyRejected  Reason = "policy_rejected"
	ReasonRateLimited     Reason = "rate_limited"
	ReasonNetworkError    Reason = "network_error"
	ReasonSystemError     Reason = "system_error"
	ReasonExpired         Reason = "expired"
	ReasonDelayed         Reason = "delayed"
	ReasonRelayDenied     Reason = "relay_denied"
	ReasonAuthRequired    Reason = "auth_required"
	ReasonAuthFailure     Reason = "auth_failure"
	ReasonProtocolError   Reason = "protocol_error"
	ReasonSenderRejected  Reason = "sender_rejected"
	ReasonComplaint       Reason = "complaint"
	ReasonAutoReply       Reason = "auto_reply"
	ReasonDelivered       Reason = "delivered"
	ReasonOther           Reason = "other"
)

var reasonClass = map[Reason]Class{
	ReasonUserUnknown:     ClassHard,
	ReasonDomainUnknown:   ClassHard,
	ReasonBadSyntax:       ClassHard,
	ReasonHasMoved:        ClassHard,
	ReasonMailboxDisabled: ClassSoft,
	ReasonMailboxFull:     ClassSoft,
	ReasonMessageTooLarge: ClassSoft,
	ReasonSpamBlocked:     ClassSoft,
	ReasonPolicyRejected:  ClassSoft,
	ReasonRateLimited:     ClassSoft,
	ReasonNetworkError:    ClassSoft,
	ReasonSystemError:     ClassSoft,
	ReasonExpired:         ClassSoft,
	ReasonDelayed:         ClassSoft,
	ReasonRelayDenied:     ClassSender,
	ReasonAuthRequired:    ClassSender,
	ReasonAuthFailure:     ClassSender,
	ReasonProtocolError:   ClassSender,
	ReasonSenderRejected:  ClassSender,
	ReasonComplaint:       ClassComplaint,
	ReasonAutoReply:       ClassNone,
	ReasonDelivered:       ClassNone,
	ReasonOther:           ClassSoft,
}

// Class is the class of a permanent failure with this reason. A transient
// (4.x.x) failure is soft whatever its reason; see Classify.
func (r Reason) Class() Class {
	if c, ok := reasonClass[r]; ok {
		return c
	}
	return ClassSoft
}

// Valid reports whether r is one of the reasons above.
func (r Reason) Valid() bool {
	_, ok := reasonClass[r]
	return ok
}

// Reasons lists every reason, for documentation and validation.
func Reasons() []Reason {
	return []Reason{
		ReasonUserUnknown, ReasonDomainUnknown, ReasonBadSyntax, ReasonHasMoved,
		ReasonMailboxDisabled, ReasonMailboxFull, ReasonMessageTooLarge,
		ReasonSpamBlocked, ReasonPolicyRejected, ReasonRateLimited,
		ReasonNetworkError, ReasonSystemError, ReasonExpired, ReasonDelayed,
		ReasonRelayDenied, ReasonAuthRequired, ReasonAuthFailure,
		ReasonProtocolError, ReasonSenderRejected, ReasonComplaint,
		ReasonAutoReply, ReasonDelivered, ReasonOther,
	}
}

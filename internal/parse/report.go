package parse

// Kind says what a whole message is.
type Kind string

// Kinds of messages.
const (
	KindBounce    Kind = "bounce"     // at least one recipient failed
	KindDelay     Kind = "delay"      // recipients delayed, none failed
	KindDelivery  Kind = "delivery"   // success notification
	KindComplaint Kind = "complaint"  // ARF feedback report
	KindAutoReply Kind = "auto_reply" // vacation, out of office, challenge
	KindNotBounce Kind = "not_bounce" // anything else
)

// Action is the RFC 3464 action of one recipient.
type Action string

// Actions of RFC 3464 section 2.3.3.
const (
	ActionFailed    Action = "failed"
	ActionDelayed   Action = "delayed"
	ActionDelivered Action = "delivered"
	ActionRelayed   Action = "relayed"
	ActionExpanded  Action = "expanded"
)

// Class says who must act on a recipient's outcome.
type Class string

// Classes of outcome.
const (
	ClassHard      Class = "hard"      // the address is bad: suppress
	ClassSoft      Class = "soft"      // may succeed later: count
	ClassSender    Class = "sender"    // the sender's setup is wrong: never suppress
	ClassComplaint Class = "complaint" // the recipient complained: suppress
	ClassNone      Class = "none"      // not a failure
)

// Suppresses reports whether an outcome of this class puts the address on
// the suppression list at once.
func (c Class) Suppresses() bool { return c == ClassHard || c == ClassComplaint }

// Report is everything read from one message.
type Report struct {
	Kind               Kind        `json:"kind"`
	ReportingMTA       string      `json:"reporting_mta"`
	OriginalMessageID  string      `json:"original_message_id"`
	OriginalEnvelopeID string      `json:"original_envelope_id,omitempty"`
	ArrivalDate        string      `json:"arrival_date,omitempty"`
	Original           *Original   `json:"original,omitempty"`
	Recipients         []Recipient `json:"recipients"`
	// Feedback describes an ARF report (kind complaint).
	Feedback *Feedback `json:"feedback,omitempty"`
	// Engine names the reader that understood the message, for
	// diagnostics: RFC3464, ARF, text (a plain-text report), AmazonSES,
	// JMRP, unsubscribe, RFC3834, challenge, list or VERP.
	Engine string `json:"engine,omitempty"`
	// VERP is the VERP address the message was sent to, when
	// Options.VERP is set and one was found.
	VERP *VERPMatch `json:"verp,omitempty"`
	// VERPs lists every VERP address found when there are several (a
	// bounce sent to several VERP addresses at once), VERP first; each
	// stands in for a recipient when the report names none.
	VERPs []VERPMatch `json:"verps,omitempty"`
}

// Original is what the report returned of the message that bounced.
type Original struct {
	MessageID       string `json:"message_id,omitempty"`
	Subject         string `json:"subject,omitempty"`
	From            string `json:"from,omitempty"`
	To              string `json:"to,omitempty"`
	ListUnsubscribe string `json:"list_unsubscribe,omitempty"`
	// ListID is the returned message's List-Id field (RFC 2919), which
	// names the mailing list it was sent to.
	ListID   string            `json:"list_id,omitempty"`
	XHeaders map[string]string `json:"x_headers,omitempty"`
}

// Recipient is the outcome for one address.
type Recipient struct {
	Address           string `json:"address"`
	OriginalRecipient string `json:"original_recipient,omitempty"`
	Action            Action `json:"action"`
	Status            Status `json:"status"`
	ReplyCode         string `json:"reply_code"`
	Diagnostic        string `json:"diagnostic"`
	RemoteMTA         string `json:"remote_mta"`
	Reason            Reason `json:"reason"`
	Class             Class  `json:"class"`
	Suppress          bool   `json:"suppress"`
	LastAttemptDate   string `json:"last_attempt_date,omitempty"`
	WillRetryUntil    string `json:"will_retry_until,omitempty"`
	// Evidence is what decided Reason and Class.
	Evidence Evidence `json:"evidence"`
}

// EvidenceSource names the kind of signal that decided a recipient.
type EvidenceSource string

// Sources of evidence.
const (
	// EvidenceStatus: the enhanced status code (RFC 3463).
	EvidenceStatus EvidenceSource = "status"
	// EvidenceReply: the SMTP reply code alone (RFC 5321).
	EvidenceReply EvidenceSource = "reply"
	// EvidencePhrase: the remote server's words, read against the phrase
	// table or the dead-mailbox wording model.
	EvidencePhrase EvidenceSource = "phrase"
	// EvidenceVendor: a wording one provider or MTA documents for itself
	// (a QUIRK rule).
	EvidenceVendor EvidenceSource = "vendor"
	// EvidenceReport: the report's own words about the recipient, where
	// the remote server's said nothing known.
	EvidenceReport EvidenceSource = "report"
	// EvidenceExpiry: the sending MTA gave up after retrying transient
	// failures.
	EvidenceExpiry EvidenceSource = "expiry"
	// EvidenceFeedback: an ARF or provider feedback report.
	EvidenceFeedback EvidenceSource = "feedback"
	// EvidenceNone: nothing known; the reason is a default.
	EvidenceNone EvidenceSource = "none"
)

// Evidence says which signal decided a recipient's reason and class, so
// a suppression can always be traced to the words or code behind it.
type Evidence struct {
	From EvidenceSource `json:"from"`
	// Text is the code or words that decided, as the rule knows them.
	Text string `json:"text"`
	// Rule names the rule: "X.1.1", "reply 550", "phrase:user_unknown",
	// "dead-mailbox", "QUIRK(outlook)", ...
	Rule string `json:"rule"`
	// Note says why the class is softer than the reason alone would
	// make it ("ambiguous: ..."), or what else was weighed.
	Note string `json:"note,omitempty"`
}

// addNote appends note to what Note already says.
func (e *Evidence) addNote(note string) {
	if e.Note != "" {
		note = e.Note + "; " + note
	}
	e.Note = note
}

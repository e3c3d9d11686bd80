package parse

import (
	"slices"
	"strings"
)

// Classification reads three signals: the enhanced status code, the SMTP
// reply code and the remote server's own words. Codes are coarse and often
// misused (5.7.1 covers spam blocks, relay denials and content filters;
// some servers answer 5.5.0 or 5.2.1 for an unknown user), so the words
// refine the code whenever they say something more specific.

// textRule maps a phrase found in a diagnostic to a reason.
type textRule struct {
	phrase string
	reason Reason
	// strength says which codes the phrase may overrule: vague words
	// ("rejected") only speak when the code says nothing, normal ones
	// overrule the bucket codes (X.7.1, X.2.0, ...), strong ones even a
	// specific code ("5.1.1 ... Refused due to recipient preferences" is
	// a filter, not an unknown user).
	strength int
	// trusted marks an unknown-user phrase that is the reporting
	// server's own verdict on its directory, not a remote reply that a
	// content filter may have given after DATA.
	trusted bool
	// rank, when set, overrides the reason's rank in reasonRank: a local
	// delivery program that failed outranks what it printed.
	rank int
	// vendor names the provider or MTA whose own documented wording the
	// phrase is (a QUIRK rule); evidence then says "vendor".
	vendor string
	// ambiguous marks a hard-reason phrase that is not, by itself, proof
	// the mailbox or domain is gone (RFC 5321's "mailbox unavailable",
	// a bare "Recipient address rejected."): it names the reason but
	// never suppresses on its own.
	ambiguous bool
	// role marks the words of the dead-mailbox model (deadword.go)
	// rather than a phrase with a reason of its own.
	role uint8
	// domains, for an ambiguous vendor phrase, are the vendor's own mail
	// domains: named in the same text, they confirm the vendor's meaning.
	domains []string
}

const (
	vague  = 0
	normal = 1
	strong = 2
)

// reasonRank orders reasons found in one text: the first one found in
// this order wins. Sender-side reasons come first (a 5.7.1 "relay access
// denied" is the sender's problem whatever else the text says), then the
// most specific statements about the recipient, then the vaguer ones.
var reasonRank = map[Reason]int{
	ReasonRelayDenied:     10,
	ReasonAuthRequired:    20,
	ReasonAuthFailure:     30,
	ReasonProtocolError:   40,
	ReasonSenderRejected:  50,
	ReasonHasMoved:        60,
	ReasonMailboxDisabled: 70,
	ReasonUserUnknown:     80,
	ReasonDomainUnknown:   90,
	ReasonBadSyntax:       100,
	ReasonMailboxFull:     110,
	ReasonMessageTooLarge: 120,
	ReasonExpired:         185,
	ReasonSpamBlocked:     140,
	ReasonRateLimited:     150,
	ReasonPolicyRejected:  160,
	ReasonNetworkError:    170,
	ReasonSystemError:     180,
	ReasonOther:           190,
}

// textRules are the phrases remote servers use, grouped by reason. They
// are matched case-insensitively with white space collapsed; '|' marks a
// word boundary.
var textRules = []textRule{
	// The sender's relay or submission setup.
	rule("relay access denied", ReasonRelayDenied, strong),
	rule("relaying denied", ReasonRelayDenied, strong),
	rule("relay denied", ReasonRelayDenied, strong),
	rule("relay not permitted", ReasonRelayDenied, strong),
	rule("relaying not permitted", ReasonRelayDenied, strong),
	rule("relaying not allowed", ReasonRelayDenied, strong),
	rule("relaying disallowed", ReasonRelayDenied, strong),
	rule("relay prohibited", ReasonRelayDenied, strong),
	rule("unable to relay", ReasonRelayDenied, strong),
	rule("not permitted to relay", ReasonRelayDenied, strong),
	rule("not allowed to relay", ReasonRelayDenied, strong),
	rule("we do not relay", ReasonRelayDenied, strong),
	rule("no relaying", ReasonRelayDenied, strong),
	rule("relay through this server without authentication", ReasonAuthRequired, strong),
	rule("must authenticate", ReasonAuthRequired, strong),
	rule("authentication required", ReasonAuthRequired, strong),
	rule("authentication is required", ReasonAuthRequired, strong),
	rule("auth required", ReasonAuthRequired, strong),
	rule("authrequired", ReasonAuthRequired, strong),
	rule("turn on smtp authentication", ReasonAuthRequired, strong),
	rule("must issue a starttls command first", ReasonAuthRequired, strong),
	rule("tls required", ReasonAuthRequired, strong),
	rule("encryption required", ReasonAuthRequired, strong),
	rule("authentication failed", ReasonAuthFailure, strong),
	rule("authentication credentials invalid", ReasonAuthFailure, strong),
	rule("authentication unsuccessful", ReasonAuthFailure, strong),

	// The sender's domain authentication (SPF, DKIM, DMARC, ARC).
	rule("dmarc", ReasonAuthFailure, strong),
	rule("|spf|", ReasonAuthFailure, strong),
	rule("sender policy framework", ReasonAuthFailure, strong),
	rule("|dkim", ReasonAuthFailure, strong),
	rule("unauthenticated email", ReasonAuthFailure, strong),
	rule("unauthenticated mail", ReasonAuthFailure, strong),
	rule("not authenticated", ReasonAuthFailure, normal),
	rule("failed authentication", ReasonAuthFailure, strong),
	rule("authentication checks", ReasonAuthFailure, strong),
	rule("does not have authentication information", ReasonAuthFailure, strong),
	rule("unauthenticated senders not allowed", ReasonAuthRequired, strong),
	// The sender's SMTP dialogue.
	rule("need rcpt command", ReasonProtocolError, strong),
	rule("need mail command", ReasonProtocolError, strong),
	rule("bad sequence of commands", ReasonProtocolError, strong),
	rule("command out of sequence", ReasonProtocolError, strong),
	rule("command unrecognized", ReasonProtocolError, strong),
	rule("command not recognized", ReasonProtocolError, strong),
	rule("unrecognized command", ReasonProtocolError, strong),
	rule("syntax error in parameters", ReasonProtocolError, strong),
	// QUIRK(exim): the sender's own message carried malformed addresses.
	rule("incorrectly constructed", ReasonProtocolError, strong),
	rule("may not follow", ReasonProtocolError, strong),
	rule("command syntax error", ReasonProtocolError, strong),

	// The envelope sender itself.
	rule("sender address rejected", ReasonSenderRejected, strong),
	rule("sender rejected", ReasonSenderRejected, strong),
	rule("sender verify failed", ReasonSenderRejected, strong),
	rule("sender verification failed", ReasonSenderRejected, strong),
	rule("unroutable sender address", ReasonSenderRejected, strong),
	rule("sender domain does not exist", ReasonSenderRejected, strong),
	rule("sender domain must exist", ReasonSenderRejected, strong),
	rule("domain of sender address", ReasonSenderRejected, strong),
	rule("invalid sender", ReasonSenderRejected, strong),
	rule("bad outbound sender", ReasonSenderRejected, strong),
	rule("provide a valid from", ReasonSenderRejected, strong), rule("sender address is not valid", ReasonSenderRejected, strong),
	rule("mail from address rejected", ReasonSenderRejected, strong),
	// A receiver that checks the sending domain's DNS names the record it
	// missed (web.de and GMX after RFC 5321's generic 550 text,
	// pasted2/033): the sender's setup, never the mailbox.
	rule("invalid dns mx", ReasonSenderRejected, strong),
	rule("a/aaaa resource record", ReasonSenderRejected, strong),
	// QUIRK(gmail): the sender's "Send mail as" alias is misconfigured.
	rule("'send mail as'", ReasonSenderRejected, strong),
	rule("send mail as feature", ReasonSenderRejected, strong),
	rule("sender is not allowed", ReasonSenderRejected, normal),
	rule("mailbox not allowed to send", ReasonSenderRejected, normal),

	// The address no longer exists here.
	rule("has moved", ReasonHasMoved, strong),
	rule("address has changed", ReasonHasMoved, strong),
	ambiguousRule("no longer available", ReasonHasMoved, normal),
	rule("no longer valid", ReasonHasMoved, normal),
	rule("no longer active", ReasonHasMoved, normal),
	rule("not our customer", ReasonHasMoved, normal),

	// The mailbox exists but is switched off.
	rule("account disabled", ReasonMailboxDisabled, strong),
	rule("account is disabled", ReasonMailboxDisabled, strong),
	rule("account has been disabled", ReasonMailboxDisabled, strong),
	rule("mailbox disabled", ReasonMailboxDisabled, strong),
	rule("mailbox is disabled", ReasonMailboxDisabled, strong),
	rule("disabled recipient", ReasonMailboxDisabled, strong),
	rule("recipient account is blocked", ReasonMailboxDisabled, strong),
	rule("compte du destinataire est bloque", ReasonMailboxDisabled, strong),
	rule("account has been suspended", ReasonMailboxDisabled, strong),
	rule("account is suspended", ReasonMailboxDisabled, strong),
	rule("account suspended", ReasonMailboxDisabled, strong),
	rule("mailbox suspended", ReasonMailboxDisabled, strong),
	rule("account is inactive", ReasonMailboxDisabled, strong),
	rule("inactive account", ReasonMailboxDisabled, strong),
	rule("mailbox is inactive", ReasonMailboxDisabled, strong),
	rule("account inactive", ReasonMailboxDisabled, strong),
	rule("account has been deactivated", ReasonMailboxDisabled, strong),
	rule("account deactivated", ReasonMailboxDisabled, strong),
	rule("mailbox is frozen", ReasonMailboxDisabled, strong),
	rule("account is locked", ReasonMailboxDisabled, strong),
	rule("account locked", ReasonMailboxDisabled, strong),
	rule("temporary locked", ReasonMailboxDisabled, strong),
	rule("temporarily locked", ReasonMailboxDisabled, strong), rule("account expired", ReasonMailboxDisabled, strong),
	rule("mailbox unavailable due to inactivity", ReasonMailboxDisabled, strong),
	rule("user account disabled", ReasonMailboxDisabled, strong),
	// QUIRK(au): au's own preface when a suspended account was refused.
	rule("the user(s) account is disabled", ReasonMailboxDisabled, strong),
	rule("the email account that you tried to reach is disabled", ReasonMailboxDisabled, strong),

	// The mailbox does not exist.
	rule("user unknown", ReasonUserUnknown, normal),
	rule("unknown user", ReasonUserUnknown, normal),
	rule("unknown recipient", ReasonUserUnknown, normal),
	rule("recipient unknown", ReasonUserUnknown, normal),
	rule("unknown address error", ReasonUserUnknown, normal),
	rule("unknown local part", ReasonUserUnknown, normal),
	rule("unknown mailbox", ReasonUserUnknown, normal),
	rule("unknown or illegal user", ReasonUserUnknown, normal),
	rule("no such user", ReasonUserUnknown, normal),
	rule("no such mailbox", ReasonUserUnknown, normal),
	rule("no such recipient", ReasonUserUnknown, normal),
	rule("no such account", ReasonUserUnknown, normal),
	rule("no such address", ReasonUserUnknown, normal),
	rule("no such person", ReasonUserUnknown, normal),
	rule("user not exist", ReasonUserUnknown, normal),
	// QUIRK(qmail): qmail-smtpd's own verdict on its users.
	vendorRule("qmail", "no mailbox here by that name", ReasonUserUnknown, normal),
	rule("no mailbox by that name", ReasonUserUnknown, normal),
	rule("no account by that name", ReasonUserUnknown, normal),
	rule("invalid recipient", ReasonUserUnknown, normal),
	rule("invalid mailbox", ReasonUserUnknown, normal),
	rule("invalid user", ReasonUserUnknown, normal),
	rule("recipient not found", ReasonUserUnknown, normal),
	rule("mailbox not found", ReasonUserUnknown, normal),
	rule("user not found", ReasonUserUnknown, normal),
	rule("address not found", ReasonUserUnknown, normal),
	rule("recipient does not exist", ReasonUserUnknown, normal),
	rule("mailbox does not exist", ReasonUserUnknown, normal),
	rule("user does not exist", ReasonUserUnknown, normal),
	rule("address does not exist", ReasonUserUnknown, normal),
	rule("account does not exist", ReasonUserUnknown, normal),
	rule("user doesn't exist", ReasonUserUnknown, normal),
	ambiguousRule("doesn't have a", ReasonUserUnknown, normal),
	rule("email account that you tried to reach does not exist", ReasonUserUnknown, normal),
	rule("recipient address rejected: user unknown", ReasonUserUnknown, normal),
	// Exim's answer when no router accepts a recipient it verifies.
	rule("unrouteable address", ReasonUserUnknown, normal),
	// QUIRK(office365): Exchange's resolver found no such recipient; it
	// says so with 5.1.10, which RFC 7505 gives to a null MX.
	vendorRule("office365", "resolver.adr.recipientnotfound", ReasonUserUnknown, strong),
	vendorRule("office365", "resolver.adr.recipnotfound", ReasonUserUnknown, strong),
	// QUIRK(office365): the reader's half of Exchange's NDR (2010 on, and
	// Exchange Online) for RecipientNotFound, as Microsoft documents it:
	// "The email address you entered couldn't be found", and the newer
	// headline "<user> wasn't found at <domain>" (pasted/001, a mail of
	// Exchange's own that carries no code).
	vendorRule("office365", "the email address you entered couldn't be found", ReasonUserUnknown, normal),
	vendorRule("office365", "wasn't found at", ReasonUserUnknown, normal),
	// QUIRK(tencent): QQ Mail's own explanation above the remote reply
	// (pasted/032): "The recipient's email address (a@b) does not exist,
	// so the message could not be delivered."
	vendorRule("tencent", "does not exist, so the message could not be delivered", ReasonUserUnknown, normal),
	// QUIRK(exchange2003): Exchange's own verdict on its directory.
	vendorRule("exchange2003", "recipient name is not recognized", ReasonUserUnknown, normal),
	ambiguousRule("recipient not recognized", ReasonUserUnknown, normal),
	// QUIRK(domino): Lotus Domino's own verdict on its directory.
	vendorRule("domino", "not listed in domino directory", ReasonUserUnknown, normal),
	vendorRule("domino", "not listed in public name", ReasonUserUnknown, normal),
	rule("is not a valid mailbox", ReasonUserUnknown, normal),
	rule("not a valid user", ReasonUserUnknown, normal),
	// RFC 5321's text for any 550 ("mailbox unavailable (e.g., mailbox
	// not found, no access, or command rejected for policy reasons)").
	ambiguousRule("mailbox unavailable", ReasonUserUnknown, normal),
	ambiguousRule("mailbox is unavailable", ReasonUserUnknown, normal),
	rule("address couldn't be found", ReasonUserUnknown, normal),
	rule("address could not be found", ReasonUserUnknown, normal),
	rule("adresse destinataire invalide", ReasonUserUnknown, normal),
	rule("invalid recipient address", ReasonUserUnknown, normal),
	rule("unknown account", ReasonUserUnknown, normal),
	rule("bad destination mailbox address", ReasonUserUnknown, normal),
	rule("destination mailbox address invalid", ReasonUserUnknown, normal),
	// QUIRK(outlook): Outlook.com and Hotmail answer "550 5.5.0 Requested
	// action not taken: mailbox unavailable" for a mailbox that does not
	// exist, and GMX and IONOS document the same words (with no enhanced
	// code) for the same meaning.
	vendorRule("outlook", "requested action not taken: mailbox unavailable", ReasonUserUnknown, normal),
	// QUIRK(yahoo): Yahoo refuses unknown users after DATA, as
	// "554 delivery error: dd This user doesn't have a ... account".
	vendorRule("yahoo", "delivery error: dd", ReasonUserUnknown, normal),
	// QUIRK(laposte): La Poste's own wording, with a misused 5.5.0.
	vendorRule("laposte", "adresse destinataire invalide", ReasonUserUnknown, normal),
	// QUIRK(gmail): Gmail's own verdict, in the text of its reports.
	vendorRule("gmail", "because the address couldn't be found", ReasonUserUnknown, normal),
	// QUIRK(verizon): Verizon Wireless's MMS gateway checks the number
	// itself; these are its own verdicts, not relayed answers.
	vendorRule("verizon", "error: invalid user address", ReasonUserUnknown, normal),
	vendorRule("verizon", "no valid recipients for this mm", ReasonUserUnknown, normal),
	// QUIRK(imail): Ipswitch IMail names its own unknown users so.
	vendorRule("imail", "unknown user:", ReasonUserUnknown, normal),
	// QUIRK(trendmicro): InterScan's own verdict on an address.
	vendorRule("trendmicro", "please check if address is correct", ReasonUserUnknown, normal),
	// QUIRK(au): au (KDDI) refuses unknown recipients with a bare
	// "Recipient address rejected." at RCPT; but Postfix, Exim and
	// OpenSMTPD use the same words for any refusal of a recipient, so
	// they prove it only next to one of au's own domains
	// (testdata/quirks/au-ezweb-recipient-rejected.eml; elsewhere,
	// au-bare-recipient-rejected.eml, they end soft).
	{phrase: "recipient address rejected.|", reason: ReasonUserUnknown, strength: normal, ambiguous: true,
		vendor: "au", domains: []string{"ezweb.ne.jp", "au.com", "auone-net.jp"}},

	// The domain does not exist or takes no mail.
	rule("host not found", ReasonDomainUnknown, normal),
	rule("host unknown", ReasonDomainUnknown, normal),
	rule("unknown host", ReasonDomainUnknown, normal),
	rule("domain not found", ReasonDomainUnknown, normal),
	rule("unknown domain", ReasonDomainUnknown, normal),
	rule("no such domain", ReasonDomainUnknown, normal),
	rule("domain does not exist", ReasonDomainUnknown, normal),
	rule("domain doesn't exist", ReasonDomainUnknown, normal),
	rule("domain name not found", ReasonDomainUnknown, normal),
	rule("name or service not known", ReasonDomainUnknown, normal),
	rule("host or domain name not found", ReasonDomainUnknown, normal),
	rule("unrouteable mail domain", ReasonDomainUnknown, normal),
	rule("no mx record", ReasonDomainUnknown, normal),
	rule("no valid mx", ReasonDomainUnknown, normal),
	ambiguousRule("mx points to", ReasonDomainUnknown, normal),
	rule("point to non-existent hosts", ReasonDomainUnknown, normal),
	rule("does not accept mail", ReasonDomainUnknown, normal),
	rule("null mx", ReasonDomainUnknown, normal),
	rule("domain is not valid", ReasonDomainUnknown, normal),
	rule("invalid domain", ReasonDomainUnknown, normal),
	ambiguousRule("unable to route", ReasonDomainUnknown, normal),
	ambiguousRule("dns lookup failure", ReasonDomainUnknown, normal),
	rule("nxdomain", ReasonDomainUnknown, normal),
	// A name server that failed to answer says nothing of the domain:
	// Postfix's "Host not found, try again" (the resolver's TRY_AGAIN)
	// and "Malformed or unexpected name server reply" are transient,
	// where its "Host not found" alone is NXDOMAIN.
	rankedRule("host not found, try again", ReasonNetworkError, strong, 85),
	rankedRule("malformed or unexpected name server reply", ReasonNetworkError, strong, 85),
	rankedRule("temporary failure in name resolution", ReasonNetworkError, strong, 85),
	rankedRule("servfail", ReasonNetworkError, strong, 85),
	rankedRule("host lookup did not complete", ReasonNetworkError, strong, 85),
	rankedRule("dns lookup timed out", ReasonNetworkError, strong, 85),
	rankedRule("name server timeout", ReasonNetworkError, strong, 85),
	rankedRule("because the domain", ReasonDomainUnknown, normal, 75),
	rule("rfc7505", ReasonDomainUnknown, normal),
	rule("indicated no smtp service", ReasonDomainUnknown, normal),
	// QUIRK(exim): cPanel's router says so when the lookup of a local or
	// remote domain fails.
	ambiguousRule("the account or domain may not exist", ReasonDomainUnknown, normal),
	// QUIRK(qmail): qmail-remote's words when DNS says the domain has no
	// MX and no address (a lookup that failed for now is "#4.4.3").
	vendorRule("qmail", "couldn't find a mail exchanger or ip address", ReasonDomainUnknown, normal),

	// The address cannot be an address.
	rule("bad address syntax", ReasonBadSyntax, normal),
	rule("bad recipient address syntax", ReasonBadSyntax, normal),
	rule("address syntax", ReasonBadSyntax, normal),
	rule("malformed recipient address", ReasonBadSyntax, normal),
	rule("malformed address", ReasonBadSyntax, normal),

	// The mailbox is over quota.
	rule("mailbox full", ReasonMailboxFull, strong),
	rule("mailbox is full", ReasonMailboxFull, strong),
	rule("mail box full", ReasonMailboxFull, strong),
	rule("mailbox has exceeded", ReasonMailboxFull, strong),
	rule("mailbox exceeds", ReasonMailboxFull, strong),
	rule("mailbox size limit", ReasonMailboxFull, strong),
	rule("mailbox would exceed", ReasonMailboxFull, strong),
	rule("exceeded storage allocation", ReasonMailboxFull, strong),
	rule("exceeds allowed size", ReasonMailboxFull, strong),
	rule("over quota", ReasonMailboxFull, strong),
	rule("overquota", ReasonMailboxFull, strong),
	rule("quota exceeded", ReasonMailboxFull, strong),
	rule("exceeded its quota", ReasonMailboxFull, strong),
	rule("exceed the quota", ReasonMailboxFull, strong),
	rule("quota exceed", ReasonMailboxFull, strong),
	rule("disk quota", ReasonMailboxFull, strong),
	rule("not enough disk space", ReasonMailboxFull, strong),
	rule("not enough storage", ReasonMailboxFull, strong),
	rule("out of storage", ReasonMailboxFull, strong),
	rule("user is over", ReasonMailboxFull, strong),
	rule("messages in recipient's mailbox exceeded", ReasonMailboxFull, strong),
	rule("full mailbox", ReasonMailboxFull, strong),
	rule("storage space", ReasonMailboxFull, strong),
	rule("storage allocation", ReasonMailboxFull, strong),
	rule("speichervolumen", ReasonMailboxFull, strong),
	rule("speicherplatz", ReasonMailboxFull, strong),
	rule("postfach ist voll", ReasonMailboxFull, strong),
	rule("boite pleine", ReasonMailboxFull, strong),
	rule("boîte pleine", ReasonMailboxFull, strong),
	rule("destinataire pleine", ReasonMailboxFull, strong),
	rule("casella piena", ReasonMailboxFull, strong),
	rule("buzón lleno", ReasonMailboxFull, strong),
	rule("ящик переполнен", ReasonMailboxFull, strong),
	rule("policy error", ReasonPolicyRejected, strong),
	// An access map's or ACL's refusal of one recipient: a local policy.
	rankedRule("recipient address rejected: access denied", ReasonPolicyRejected, normal, 130),
	rankedRule("denied by policy", ReasonPolicyRejected, normal, 130),
	rule("rejected by destination domain", ReasonPolicyRejected, normal),
	// QUIRK(yahoo): Yahoo's TSS09 refuses a sending IP for its
	// reputation for good.
	vendorRule("yahoo", "permanently deferred", ReasonSpamBlocked, normal),
	rule("is full", ReasonMailboxFull, vague),

	// The message is too big.
	rule("message too large", ReasonMessageTooLarge, strong),
	rule("message too big", ReasonMessageTooLarge, strong),
	rule("message is too large", ReasonMessageTooLarge, strong),
	rule("message is too big", ReasonMessageTooLarge, strong),
	rule("message size exceeds", ReasonMessageTooLarge, strong),
	rule("message exceeds", ReasonMessageTooLarge, normal),
	rule("message length exceeds", ReasonMessageTooLarge, strong),
	rule("size limit exceeded", ReasonMessageTooLarge, strong),
	rule("mail size limit", ReasonMessageTooLarge, strong),
	rule("exceeds size limit", ReasonMessageTooLarge, strong),
	rule("exceeds the maximum", ReasonMessageTooLarge, normal),
	rule("message file too big", ReasonMessageTooLarge, strong),
	rule("line limit exceeded", ReasonMessageTooLarge, normal),
	rule("too big for system", ReasonMessageTooLarge, strong),
	rule("size exceeds", ReasonMessageTooLarge, normal),

	// Delivery was retried until the queue gave up.
	rule("retry timeout exceeded", ReasonExpired, strong),
	rule("retry time not reached", ReasonExpired, normal),
	rule("message expired", ReasonExpired, strong),
	rule("delivery time expired", ReasonExpired, strong),
	rule("giving up", ReasonExpired, normal),
	rule("given up", ReasonExpired, normal),
	rule("gave up", ReasonExpired, normal),
	rule("has been failing for a long time", ReasonExpired, strong),
	rule("have been failing for a long time", ReasonExpired, strong),
	rule("could not be delivered within", ReasonExpired, strong),
	rule("was not delivered within", ReasonExpired, strong),
	rule("couldn't be delivered within", ReasonExpired, strong),
	rule("too long in queue", ReasonExpired, strong),
	rule("could not deliver for the last", ReasonExpired, strong),
	rule("delivery attempts will continue", ReasonExpired, normal),
	rule("retry period", ReasonExpired, normal),
	rule("maximum queue time", ReasonExpired, strong),
	rule("envelope expired", ReasonExpired, strong),
	rule("in the queue too long", ReasonExpired, normal),
	rule("could not be delivered for too long", ReasonExpired, normal),
	rule("cannot send message for", ReasonExpired, normal),
	rule("still undelivered after", ReasonExpired, normal),
	rule("was aborted after", ReasonExpired, normal),
	rule("attempts:", ReasonExpired, normal),
	// Connection timeouts are transient: when they end a delivery, the
	// queue gave up retrying them.
	rule("connection timed out", ReasonExpired, normal),
	rule("timed out", ReasonExpired, normal),
	// QUIRK(gmail): what Gmail says when it gave up connecting.
	rule("did not accept our requests to connect", ReasonExpired, normal),
	rule("host not reachable", ReasonExpired, normal),
	rule("not responding", ReasonExpired, normal),
	rule("|on hold|", ReasonOther, strong),
	// Block lists, reputation, reverse DNS, spam and virus filters.
	rule("spam", ReasonSpamBlocked, normal),
	rule("spamhaus", ReasonSpamBlocked, strong),
	rule("spamcop", ReasonSpamBlocked, strong),
	rule("sorbs.net", ReasonSpamBlocked, strong),
	rule("uceprotect", ReasonSpamBlocked, strong),
	rule("barracudacentral", ReasonSpamBlocked, strong),
	rule("blacklist", ReasonSpamBlocked, strong),
	rule("black list", ReasonSpamBlocked, strong),
	rule("blocklist", ReasonSpamBlocked, strong),
	rule("block list", ReasonSpamBlocked, strong),
	rule("blocked using", ReasonSpamBlocked, strong),
	rule("listed in", ReasonSpamBlocked, normal),
	rule("dnsbl", ReasonSpamBlocked, strong),
	rule("|rbl", ReasonSpamBlocked, normal),
	rule("reputation", ReasonSpamBlocked, normal),
	rule("reverse dns", ReasonSpamBlocked, normal),
	rule("open relay", ReasonSpamBlocked, normal),
	rule("mismatches client ip", ReasonSpamBlocked, normal),
	rule("ip name lookup failed", ReasonSpamBlocked, normal),
	rule("unverifyable sending ip", ReasonSpamBlocked, normal),
	rule("unverifiable sending ip", ReasonSpamBlocked, normal),
	rankedRule("my name was rejected", ReasonSpamBlocked, normal, 25),
	rule("not accepting connections", ReasonSpamBlocked, normal),
	rule("unfortunately, messages from", ReasonSpamBlocked, normal),
	rule("invalid ip for sending mail", ReasonSpamBlocked, normal),
	rule("service refused", ReasonSpamBlocked, normal),
	rule("content rejected", ReasonSpamBlocked, normal),
	rule("|ube|", ReasonSpamBlocked, strong),
	// QUIRK(orange): Orange's code for mail its filter took for spam.
	rule("ofr_506", ReasonSpamBlocked, strong),
	// QUIRK(cox): Cox's code for a sender IP on a block list, given with
	// "sender rejected".
	rankedRule("aup#cdrbl", ReasonSpamBlocked, strong, 5),
	rankedRule("rejected due to spam classification", ReasonSpamBlocked, strong, 25), rule("ptr record", ReasonSpamBlocked, normal),
	rule("no ptr", ReasonSpamBlocked, normal),
	rule("rdns", ReasonSpamBlocked, normal),
	rule("dynamic ip", ReasonSpamBlocked, normal),
	rule("dynamic address", ReasonSpamBlocked, normal),
	rule("dial-up", ReasonSpamBlocked, normal),
	rule("dialup", ReasonSpamBlocked, normal),
	rule("residential", ReasonSpamBlocked, normal),
	rule("smtp server of your isp", ReasonSpamBlocked, normal),
	rule("virus", ReasonSpamBlocked, normal),
	rule("malware", ReasonSpamBlocked, normal),
	rule("infected", ReasonSpamBlocked, normal),
	rule("junk mail", ReasonSpamBlocked, normal),
	rule("client host rejected", ReasonSpamBlocked, normal),
	rule("access denied", ReasonSpamBlocked, normal),
	rule("blocked", ReasonSpamBlocked, vague),
	rule("banned", ReasonSpamBlocked, vague),
	rule("unsolicited", ReasonSpamBlocked, normal),
	rule("bulk mail", ReasonSpamBlocked, normal),

	// Throttling.
	rule("too many connections", ReasonRateLimited, normal),
	// QUIRK(tencent): QQ mail's throttling: "Ip frequency limited".
	rule("frequency limited", ReasonRateLimited, strong),
	// QUIRK(gmail): a recipient receiving too fast, under 5.2.1.
	rule("receiving mail at a rate", ReasonRateLimited, strong),
	rule("receiving mail too quickly", ReasonRateLimited, strong),
	rule("too quickly", ReasonRateLimited, normal), rule("too many recipients", ReasonRateLimited, strong),
	rule("too many concurrent", ReasonRateLimited, normal),
	rule("connection limit", ReasonRateLimited, normal),
	rule("rate limit", ReasonRateLimited, normal),
	rule("ratelimit", ReasonRateLimited, normal),
	rule("rate-limit", ReasonRateLimited, normal),
	rule("throttl", ReasonRateLimited, normal),
	rule("sending rate", ReasonRateLimited, normal),
	rule("too fast", ReasonRateLimited, normal),
	rule("too many messages from", ReasonRateLimited, normal),
	rule("too many emails", ReasonRateLimited, normal),
	rule("exceeded the maximum number of connections", ReasonRateLimited, normal),

	// Local policy and content filters.
	// QUIRK(facebook): "550 5.1.1 RCP-P2 ... Refused due to recipient
	// preferences" is the recipient's filter, whatever the code says.
	rule("recipient preferences", ReasonPolicyRejected, strong),
	rule("domain filter", ReasonPolicyRejected, normal),
	rule("policy violation", ReasonPolicyRejected, normal),
	rule("protocol violation", ReasonPolicyRejected, normal),
	// QUIRK(yahoo): Yahoo gives its policy refusals the code 5.7.9.
	rankedRule("not accepted for policy reasons", ReasonPolicyRejected, strong, 25),
	rankedRule("duplicate header", ReasonPolicyRejected, strong, 25), rule("violates", ReasonPolicyRejected, vague),
	rankedRule("not rfc 5322 compliant", ReasonPolicyRejected, strong, 25),
	// QUIRK(googlegroups): the group refused the post (it may not
	// exist, or the sender may not post); the words are localised.
	rule("groups.google.com/support", ReasonPolicyRejected, normal), rule("message content", ReasonPolicyRejected, normal),
	rule("not compliant", ReasonPolicyRejected, normal),
	rule("rfc 5322", ReasonPolicyRejected, normal),
	rule("rfc5322", ReasonPolicyRejected, normal),
	rule("rfc 2822", ReasonPolicyRejected, normal),
	rule("rfc2822", ReasonPolicyRejected, normal),
	rule("prohibited", ReasonPolicyRejected, vague),
	rule("not permitted", ReasonPolicyRejected, vague),
	rule("not allowed", ReasonPolicyRejected, vague),
	rule("not authorized", ReasonPolicyRejected, vague),
	rule("refused", ReasonPolicyRejected, vague),
	rule("rejected", ReasonPolicyRejected, vague),
	rule("denied", ReasonPolicyRejected, vague),
	rule("policy", ReasonPolicyRejected, vague),
	rule("filtered", ReasonPolicyRejected, vague),
	rule("permission to post", ReasonPolicyRejected, normal),
	rule("not a member", ReasonPolicyRejected, normal),

	// The path to the destination.
	rule("connection refused", ReasonNetworkError, normal),
	// Postfix: the server's greeting refused the connection.
	rule("refused to talk to me", ReasonSpamBlocked, normal),
	rule("no route to host", ReasonNetworkError, normal),
	rule("network is unreachable", ReasonNetworkError, normal),
	rule("host unreachable", ReasonNetworkError, normal),
	rule("lost connection", ReasonNetworkError, normal),
	rule("connection reset", ReasonNetworkError, normal),
	rule("network error", ReasonNetworkError, normal),
	rule("able to establish an smtp connection", ReasonNetworkError, normal),
	rule("host name lookup failure", ReasonNetworkError, normal), rule("connection dropped", ReasonNetworkError, normal),
	rule("could not connect", ReasonNetworkError, normal),
	rule("unable to connect", ReasonNetworkError, normal),
	rule("couldn't connect", ReasonNetworkError, normal),
	rule("routing loop", ReasonNetworkError, normal),
	rule("mail loop", ReasonNetworkError, normal),
	rule("loop detected", ReasonNetworkError, normal),
	rule("too many hops", ReasonNetworkError, normal),
	rule("hop count exceeded", ReasonNetworkError, normal),
	rule("no answer", ReasonNetworkError, normal),
	rule("temporary lookup failure", ReasonNetworkError, normal),

	// The destination system failed.
	rule("system error", ReasonSystemError, normal),
	rule("internal error", ReasonSystemError, normal),
	rule("internal server error", ReasonSystemError, normal),
	rule("local error", ReasonSystemError, normal),
	rule("mail system full", ReasonSystemError, normal),
	rule("system is full", ReasonSystemError, normal),
	rule("insufficient system storage", ReasonSystemError, normal),
	rule("insufficient disk space", ReasonSystemError, normal),
	rule("ldap", ReasonSystemError, normal),
	rule("service currently unavailable", ReasonSystemError, normal),
	rule("duplicated message-id", ReasonSystemError, normal), rule("out of memory", ReasonSystemError, normal),
	rule("i/o error", ReasonSystemError, normal),
	rule("mailer error", ReasonSystemError, normal),
	rankedRule("pipe to |", ReasonSystemError, strong, 55),
	rankedRule("command output:", ReasonSystemError, strong, 55),
	rankedRule("procmail:", ReasonSystemError, strong, 55),
	rankedRule("command died", ReasonSystemError, strong, 55),
	rule("exited with", ReasonSystemError, normal),
	rule("unable to execute", ReasonSystemError, normal),
	rule("server configuration", ReasonSystemError, normal),
	rule("misconfigured", ReasonSystemError, normal),
	rule("service unavailable", ReasonSystemError, vague),
	rule("temporarily unavailable", ReasonSystemError, vague),
	rule("try again later", ReasonSystemError, vague),
}

func rule(phrase string, reason Reason, strength int) textRule {
	return textRule{phrase: phrase, reason: reason, strength: strength}
}

func rankedRule(phrase string, reason Reason, strength, rank int) textRule {
	return textRule{phrase: phrase, reason: reason, strength: strength, rank: rank}
}

// vendorRule is a phrase one provider or MTA documents as its own
// verdict; it is trusted like the reporting server's own words.
func vendorRule(vendor, phrase string, reason Reason, strength int) textRule {
	return textRule{phrase: phrase, reason: reason, strength: strength, trusted: true, vendor: vendor}
}

// ambiguousRule is a phrase that names a hard reason without proving it.
func ambiguousRule(phrase string, reason Reason, strength int) textRule {
	return textRule{phrase: phrase, reason: reason, strength: strength, ambiguous: true}
}

// allRules are the phrase table and the dead-mailbox model's words,
// matched in one pass.
var allRules = slices.Concat(textRules, deadWords())

var textPhrases = newTextMatcher(allRules)

// textMatcher finds allRules in a text. The rules written in ASCII are
// one automaton and the others (accented, Cyrillic, CJK words) a second
// one, scanned only when the text has a byte outside ASCII: most
// diagnostics are ASCII, and the ASCII automaton's table is half the
// size, which keeps the hot loop in cache.
type textMatcher struct {
	ascii, other       *phraseSet
	asciiIDs, otherIDs []int // automaton id -> index in the rules
	n                  []int // rule -> length of its normalised phrase
}

func newTextMatcher(rules []textRule) *textMatcher {
	m := &textMatcher{n: make([]int, len(rules))}
	var asciiList, otherList []string
	for i, r := range rules {
		if isASCII(r.phrase) {
			asciiList, m.asciiIDs = append(asciiList, r.phrase), append(m.asciiIDs, i)
		} else {
			otherList, m.otherIDs = append(otherList, r.phrase), append(m.otherIDs, i)
		}
	}
	m.ascii, m.other = newPhraseSet(asciiList), newPhraseSet(otherList)
	// The automata know each phrase's normalised length already.
	for id, i := range m.asciiIDs {
		m.n[i] = m.ascii.phrases[id].n
	}
	for id, i := range m.otherIDs {
		m.n[i] = m.other.phrases[id].n
	}
	return m
}

// scanAt calls fn with the rule and end index of every match, the ASCII
// rules' in text order first, then the others'. fn returns false to stop.
func (m *textMatcher) scanAt(text string, fn func(rule, end int) bool) {
	stopped := false
	m.ascii.scanAt(text, func(id, end int) bool {
		if !fn(m.asciiIDs[id], end) {
			stopped = true
			return false
		}
		return true
	})
	if stopped || isASCII(text) {
		return
	}
	m.other.scanAt(text, func(id, end int) bool { return fn(m.otherIDs[id], end) })
}

// textVerdict is what the words of a diagnostic say.
type textVerdict struct {
	reason   Reason
	strength int
	trusted  bool
	found    bool
	// rule is the index in allRules of the phrase that decided, or -1
	// for the dead-mailbox model; dead its words, when the model decided.
	rule int
	dead string
	// contra holds reasons that other phrases of the text name, found
	// apart from the deciding phrase: policy, spam, throttling or network
	// trouble said alongside "user unknown" make it no proof.
	contra reasonSet
	// confirmed says an ambiguous vendor phrase came with one of the
	// vendor's own domains, which makes it the vendor's verdict.
	confirmed bool
}

// reasonSet is a small set of reasons.
type reasonSet uint32

var reasonBits = func() map[Reason]reasonSet {
	m := map[Reason]reasonSet{}
	for i, r := range Reasons() {
		m[r] = 1 << uint(i)
	}
	return m
}()

// contradicting are the reasons that, said alongside a dead-mailbox
// phrase, make it no proof: a filter or a network problem may use
// "unknown" words too.
var contradicting = reasonBits[ReasonSpamBlocked] | reasonBits[ReasonPolicyRejected] | reasonBits[ReasonRateLimited] |
	reasonBits[ReasonNetworkError] | reasonBits[ReasonRelayDenied] | reasonBits[ReasonAuthFailure] |
	reasonBits[ReasonAuthRequired] | reasonBits[ReasonSenderRejected] | reasonBits[ReasonProtocolError]

// phraseHit is one phrase found: its rule and where it ends.
type phraseHit struct {
	id, end int
}

// readText finds the reason the words of a diagnostic give: the best
// ranked phrase found, with the strongest wording of that reason; else
// what the dead-mailbox model reads.
func readText(text string) textVerdict {
	v := textVerdict{rule: -1}
	if text == "" {
		return v
	}
	bestRank := 1 << 30
	bestEnd := 0
	var words deadScan
	var others [8]phraseHit
	nothers := 0
	textPhrases.scanAt(text, func(id, end int) bool {
		r := &allRules[id]
		if r.role != 0 {
			words.add(r.role, end, textPhrases.n[id])
			return true
		}
		if nothers < len(others) && r.strength != vague && reasonBits[r.reason]&contradicting != 0 {
			others[nothers] = phraseHit{id, end}
			nothers++
		}
		rank := r.rank
		if rank == 0 {
			rank = reasonRank[r.reason]
		}
		if r.strength == vague {
			rank += 1000 // vague words speak only when nothing else does
		}
		switch {
		case rank < bestRank:
			v = textVerdict{reason: r.reason, strength: r.strength, trusted: r.trusted, found: true, rule: id}
			bestRank, bestEnd = rank, end
		case r.reason == v.reason:
			if r.strength > v.strength {
				v.strength, v.rule, bestEnd = r.strength, id, end
			}
			v.trusted = v.trusted || r.trusted
		}
		return true
	})
	if reason, dead := words.find(text); dead != "" && (!v.found || v.strength == vague || v.reason == ReasonOther ||
		v.reason == reason && v.rule >= 0 && allRules[v.rule].ambiguous ||
		bestRank > reasonRank[reason] && v.strength != strong && v.reason.Class() == ClassSoft && reasonBits[v.reason]&contradicting == 0) {
		v = textVerdict{reason: reason, strength: normal, found: true, rule: -1, dead: dead}
		bestEnd = -1
	}
	if v.rule >= 0 && len(allRules[v.rule].domains) > 0 {
		lower := strings.ToLower(text)
		for _, d := range allRules[v.rule].domains {
			if strings.Contains(lower, d) {
				v.confirmed = true
			}
		}
	}
	if v.found && v.reason.Class() == ClassHard {
		n := 0
		if v.rule >= 0 {
			n = 2*len(allRules[v.rule].phrase) + 2
		}
		for _, h := range others[:nothers] {
			if v.rule >= 0 && h.end <= bestEnd && h.end > bestEnd-n {
				continue // words inside the deciding phrase ("not listed in ...")
			}
			v.contra |= reasonBits[allRules[h.id].reason]
		}
	}
	return v
}

// evidence says which words decided.
func (v textVerdict) evidence() Evidence {
	if v.rule < 0 {
		return Evidence{From: EvidencePhrase, Text: v.dead, Rule: "dead-mailbox"}
	}
	r := &allRules[v.rule]
	if r.vendor != "" && (len(r.domains) == 0 || v.confirmed) {
		return Evidence{From: EvidenceVendor, Text: r.phrase, Rule: "QUIRK(" + r.vendor + ")"}
	}
	return Evidence{From: EvidencePhrase, Text: strings.Trim(r.phrase, "|"), Rule: "phrase:" + string(r.reason)}
}

// unambiguous reports a verdict whose words alone prove a hard reason.
func (v textVerdict) unambiguous() bool {
	if !v.found || v.reason.Class() != ClassHard || v.strength == vague {
		return false
	}
	return v.rule < 0 || !allRules[v.rule].ambiguous || v.confirmed
}

// textReason returns the reason the words of a text give, if any.
func textReason(text string) (Reason, bool) {
	v := readText(text)
	return v.reason, v.found
}

// senderReplies are SMTP replies that always mean the sending side erred:
// command sequence and syntax (the seeds' 503 5.5.x) and authentication.
var senderReplies = map[string]Reason{
	"500": ReasonProtocolError,
	"501": ReasonProtocolError,
	"502": ReasonProtocolError,
	"503": ReasonProtocolError,
	"504": ReasonProtocolError,
	"530": ReasonAuthRequired,
	"534": ReasonAuthFailure,
	"535": ReasonAuthFailure,
	"538": ReasonAuthRequired,
}

// policyCode reports an enhanced code given with a reply (not inferred
// from it) that names a refusal for policy or security, X.7.x other than
// X.7.0: a server answering "501 5.7.1 Permission denied" uses the reply
// code loosely and says with the enhanced one why (RFC 3463: the enhanced
// code is the finer); a syntax or sequence error comes as X.5.x or X.0.0.
func policyCode(st Status, fromReply bool) bool {
	sd := st.SubjectDetail()
	return !fromReply && st.Class() == 5 && strings.HasPrefix(sd, "7.") && sd != "7.0"
}

// specificCode reports codes whose own reason the text may only overrule
// with a strong phrase: they name one condition precisely, where the rest
// (X.0.0, X.1.0, X.2.0, X.3.0, X.5.x, X.7.0, X.7.1, ...) are buckets.
func specificCode(st Status) bool {
	switch st.SubjectDetail() {
	case "1.1", "1.2", "1.3", "1.6", "1.10", "2.2", "2.3", "3.4", "4.4",
		"7.8", "7.9", "7.10", "7.11", "7.20", "7.21", "7.22", "7.23", "7.24", "7.25", "7.26", "7.27", "7.29":
		return true
	}
	return false
}

// recipientCode reports the permanent codes that say, of this recipient
// alone, that its mailbox or domain is gone: enough to suppress when
// nothing in the text contradicts them.
func recipientCode(st Status) bool {
	if st.Class() != 5 {
		return false
	}
	switch st.SubjectDetail() {
	case "1.1", "1.2", "1.3", "1.6", "1.10":
		return true
	}
	return false
}

// Verdict is a classification with the evidence behind it.
type Verdict struct {
	Reason   Reason
	Class    Class
	Evidence Evidence
}

// ClassifyStatus returns the reason and class of a failure from its
// enhanced status st, SMTP reply code and the server's diagnostic text
// (any may be empty).
func ClassifyStatus(st Status, reply, diagnostic string) (Reason, Class) {
	v := Classify(st, reply, diagnostic)
	return v.Reason, v.Class
}

// Classify is ClassifyStatus with the evidence that decided. A hard
// reason keeps its hard class only on strong evidence: a recipient-level
// permanent code (X.1.1, X.1.2, X.1.3, X.1.6, X.1.10) or unambiguous
// dead-mailbox words in a permanent reply, with nothing in the text
// contradicting them; otherwise the class is soft and Evidence.Note says
// why.
func Classify(st Status, reply, diagnostic string) Verdict {
	v := classify(st, reply, diagnostic, smtpStage(diagnostic), false)
	class := classOf(v.reason, st, reply)
	permanent := st.Class() == 5 || st == "" && len(reply) == 3 && reply[0] == '5'
	class, v.ev = gate(v, class, permanent)
	return Verdict{Reason: v.reason, Class: class, Evidence: v.ev}
}

// verdict is a reason with what decided it.
type verdict struct {
	reason Reason
	ev     Evidence
	// st is the code the reason was read with (inferred from the reply
	// when the report gave none, then fromReply is set).
	st        Status
	fromReply bool
	tv        textVerdict
	// filtered says unknown-user words were read as a content filter's
	// refusal, for want of the report's confirmation.
	filtered bool
}

// strong reports evidence enough to suppress a hard reason: a
// recipient-level permanent code that the words do not contradict, or
// unambiguous words (a dead-mailbox phrase, a vendor's documented
// verdict) in a permanent reply.
func (v verdict) strong(permanent bool) (bool, string) {
	if !permanent {
		return false, "ambiguous: a transient reply does not prove the address is gone"
	}
	if v.tv.contra != 0 {
		return false, "ambiguous: the reply also speaks of policy, spam, throttling or network trouble"
	}
	if !v.fromReply && recipientCode(v.st) {
		if info, _ := Lookup(v.st); info.Reason == v.reason {
			return true, ""
		}
	}
	if v.tv.reason == v.reason && v.tv.unambiguous() {
		return true, ""
	}
	return false, "ambiguous: no recipient-level code and no unambiguous words say the address is gone"
}

// gate keeps a hard class only on strong evidence.
func gate(v verdict, class Class, permanent bool) (Class, Evidence) {
	ev := v.ev
	if class != ClassHard {
		return class, ev
	}
	if ok, why := v.strong(permanent); !ok {
		ev.addNote(why)
		return ClassSoft, ev
	}
	if ev.From == EvidenceStatus && !recipientCode(v.st) {
		// The code named the reason but the words proved it: show them.
		ev = v.tv.evidence()
		ev.Note = "with code " + string(v.st)
	}
	return class, ev
}

// classOf settles the class of a reason given the code's class: a
// transient failure is soft unless the sender's side is at fault.
func classOf(reason Reason, st Status, reply string) Class {
	switch {
	case reason == ReasonDelivered || reason == ReasonAutoReply:
		return ClassNone
	case reason.Class() == ClassSender || reason == ReasonComplaint:
		return reason.Class()
	case st.Class() == 4 || st == "" && len(reply) == 3 && reply[0] == '4':
		return ClassSoft
	}
	return reason.Class()
}

// codeEvidence is the evidence of a status code, or of the reply code it
// was inferred from.
func codeEvidence(st Status, reply string, fromReply bool) Evidence {
	if fromReply {
		return Evidence{From: EvidenceReply, Text: reply, Rule: "reply " + reply}
	}
	if st == "" {
		return Evidence{From: EvidenceNone, Rule: "no code or known words"}
	}
	rule := "X." + st.SubjectDetail()
	if info, ok := Lookup(st); ok {
		rule += " " + info.Title
	}
	return Evidence{From: EvidenceStatus, Text: string(st), Rule: rule}
}

// dbebPhrase is Microsoft's Directory-Based Edge Blocking refusal.
var dbebPhrase = newPhraseSet([]string{"recipient address rejected: access denied"})

// classify reads a failure's reason from its code, reply, words and the
// SMTP command it answered ("" when unknown). trusted says the report's
// own words confirm an unknown user.
func classify(st Status, reply, diagnostic, stage string, trusted bool) verdict {
	fromReply := false
	if st == "" {
		st = StatusFromReply(reply)
		fromReply = st != ""
	}
	if st.Class() == 2 {
		return verdict{reason: ReasonDelivered, ev: codeEvidence(st, reply, fromReply), st: st, fromReply: fromReply}
	}
	tv := readText(diagnostic)
	v := verdict{st: st, fromReply: fromReply, tv: tv}
	if tv.found && tv.reason.Class() == ClassSender {
		v.reason, v.ev = tv.reason, tv.evidence()
		return v
	}
	if st.SubjectDetail() == "4.1" && containsAny(dbebPhrase, diagnostic) {
		// QUIRK(office365): Directory-Based Edge Blocking refuses an
		// address missing from the tenant's directory with 5.4.1
		// "Recipient address rejected: Access denied"; with any other
		// code (Postfix's 5.7.1 access maps) the words are a policy.
		v.reason = ReasonUserUnknown
		v.ev = Evidence{From: EvidenceVendor, Text: string(st) + " recipient address rejected: access denied", Rule: "QUIRK(office365)"}
		v.tv = textVerdict{reason: ReasonUserUnknown, strength: strong, trusted: true, found: true, rule: -1, dead: v.ev.Text}
		return v
	}
	var cr Reason
	if info, ok := Lookup(st); ok && !st.Generic() {
		cr = info.Reason
	}
	sd := st.SubjectDetail()
	if strings.HasPrefix(sd, "5.") && (len(reply) != 3 || reply[:2] != "50") && (reply != "" || tv.found) {
		// X.5.x is the sender's protocol error only with a 50x reply, or
		// when nothing else is known.
		// QUIRK(hotmail, laposte): both answer 550 5.5.0 for unknown and
		// blocked recipients; others give X.5.0 with 421.
		cr = ""
	}
	if r, ok := senderReplies[reply]; ok && !specificCode(st) && (!tv.found || tv.strength == vague) &&
		(r != ReasonProtocolError || !policyCode(st, fromReply)) && (st == "" || st[0] == reply[0]) {
		// (A reply of another class than the status did not decide it:
		// Sendmail gives up with 4.4.7 on a 421, yet names the 502 its
		// pipelined DATA drew afterwards.)
		v.reason, v.ev = r, Evidence{From: EvidenceReply, Text: reply, Rule: "reply " + reply}
		return v
	}
	v.reason, v.ev = cr, codeEvidence(st, reply, fromReply)
	switch {
	case cr == "" || cr == ReasonOther:
		if tv.found {
			v.reason, v.ev = tv.reason, tv.evidence()
		}
	case tv.found && (tv.strength == strong || tv.strength == normal && (fromReply || !specificCode(st))):
		// A code inferred from the reply code (552 reads as 5.2.2) is only
		// a convention: the words outrank it.
		if tv.reason != cr {
			v.reason, v.ev = tv.reason, tv.evidence()
			v.ev.Note = "the words overrule code " + string(st)
		}
	}
	if v.reason == "" || v.reason == ReasonDelivered {
		v.reason = ReasonOther // a success detail on a failure says nothing
		if v.ev.From == EvidenceStatus && st.Generic() || v.ev.From == "" {
			v.ev = Evidence{From: EvidenceNone, Text: string(st), Rule: "no code or known words"}
		}
	}
	switch {
	case v.reason == ReasonUserUnknown && cr != ReasonUserUnknown && stage != "rcpt" && stage != stageUnsaid && !tv.trusted && (!trusted || stage == "data"):
		// "Unknown user" without a code saying so, and not in answer to
		// RCPT TO, is how content filters (Japanese carriers' domain
		// filters, filtering appliances) refuse mail after DATA: it is no
		// proof the mailbox is gone.
		v.reason, v.filtered = ReasonPolicyRejected, true
		v.ev.Note = "unknown-user words not in answer to RCPT TO: a content filter's refusal"
	case stage == "mail" && (v.reason.Class() == ClassHard || v.reason == ReasonOther):
		// Refused at MAIL FROM: the envelope sender was the problem.
		v.reason = ReasonSenderRejected
		v.ev.Note = "refused in answer to MAIL FROM: the sender was"
	case (stage == "conn" || stage == "helo") && (v.reason == ReasonOther || v.reason == ReasonPolicyRejected):
		// Refused before any address was given: the sending host was.
		v.reason = ReasonSpamBlocked
		v.ev.Note = "refused before any address was given: the sending host was"
	case v.reason == ReasonDomainUnknown && st.Class() == 4 && !containsAny(nullMXPhrases, diagnostic):
		// A transient code on "domain not found" means the lookup failed
		// for now (a DNS timeout, a lame server), not that it is gone.
		v.reason = ReasonNetworkError
		v.ev.Note = "a transient code on domain-not-found words: the lookup failed for now"
	}
	return v
}

// stageUnsaid is the stage of a reply in the report of an MTA that never
// names the command a reply answered.
const stageUnsaid = "unsaid"

// nullMXPhrases mark a domain that publishes it takes no mail (RFC 7505).
var nullMXPhrases = newPhraseSet([]string{"null mx", "rfc7505", "rfc 7505", "indicated no smtp service", "does not accept mail"})

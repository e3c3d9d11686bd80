// Package mailboxprovider names the mailbox provider that receives mail
// for a recipient domain: Gmail and Google Workspace, Microsoft (Outlook,
// Hotmail, Microsoft 365), Yahoo and AOL, Apple iCloud and the rest that
// publish sender requirements of their own. A domain is known by name
// (gmail.com) or by the hosts of its MX records (RFC 5321 section 5.1),
// which the hosted domains of a provider share (any Microsoft 365 domain's
// MX is a host under mail.protection.outlook.com).
//
// The package is pure: it holds the tables and reads nothing. Resolving a
// domain's MX hosts is internal/mxresolve's work.
//
// A Provider is a bounded value, fit for a metric label: one of Known,
// Other (resolved, none of the table) or Unknown (not resolved, or the
// lookup failed).
package mailboxprovider

import "strings"

// Provider is a mailbox provider's name: lower-case ASCII letters, digits
// and underscores.
type Provider string

// Providers. The groups follow who runs the receiving servers: AOL's mail
// is received by Yahoo's, GMX's and WEB.DE's by the same United Internet
// servers.
const (
	Google     Provider = "google"    // Gmail, Google Workspace
	Microsoft  Provider = "microsoft" // Outlook.com, Hotmail, Live, Microsoft 365 (Exchange Online)
	Yahoo      Provider = "yahoo"     // Yahoo Mail, AOL
	Apple      Provider = "apple"     // iCloud Mail
	GMX        Provider = "gmx"       // GMX, WEB.DE, mail.com (United Internet)
	IONOS      Provider = "ionos"     // IONOS (1&1) hosted mail
	MailRu     Provider = "mailru"    // Mail.ru
	Yandex     Provider = "yandex"
	Zoho       Provider = "zoho"
	Orange     Provider = "orange" // Orange, Wanadoo
	Comcast    Provider = "comcast"
	Proton     Provider = "proton"
	Fastmail   Provider = "fastmail"
	Tencent    Provider = "tencent" // QQ Mail, Foxmail, Tencent Exmail
	NetEase    Provider = "netease" // 163.com, 126.com, yeah.net
	Naver      Provider = "naver"
	TOnline    Provider = "t_online" // Deutsche Telekom
	Libero     Provider = "libero"   // Italiaonline's Libero
	Free       Provider = "free"     // free.fr
	Seznam     Provider = "seznam"
	Mimecast   Provider = "mimecast"   // a filtering gateway in front of a company's mailboxes
	Proofpoint Provider = "proofpoint" // a filtering gateway
	Barracuda  Provider = "barracuda"  // a filtering gateway
	Other      Provider = "other"      // resolved: none of the providers above
	Unknown    Provider = "unknown"    // not resolved (yet), or the lookup failed
)

// known lists the providers of the tables, in the order Known returns.
var known = []Provider{Google, Microsoft, Yahoo, Apple, GMX, IONOS, MailRu, Yandex, Zoho, Orange, Comcast,
	Proton, Fastmail, Tencent, NetEase, Naver, TOnline, Libero, Free, Seznam, Mimecast, Proofpoint, Barracuda}

// Known returns every provider of the tables, then Other and Unknown:
// every value a Provider from this package can have.
func Known() []Provider {
	out := make([]Provider, 0, len(known)+2)
	return append(append(out, known...), Other, Unknown)
}

// Valid reports whether p is one of Known.
func (p Provider) Valid() bool {
	if p == Other || p == Unknown {
		return true
	}
	for _, k := range known {
		if p == k {
			return true
		}
	}
	return false
}

// byDomain is the mailbox domains of the providers themselves: their
// users' addresses, known without a lookup.
var byDomain = map[string]Provider{
	"gmail.com": Google, "googlemail.com": Google, "google.com": Google,

	"outlook.com": Microsoft, "hotmail.com": Microsoft, "live.com": Microsoft, "msn.com": Microsoft,
	"hotmail.co.uk": Microsoft, "hotmail.fr": Microsoft, "hotmail.de": Microsoft, "hotmail.it": Microsoft,
	"hotmail.es": Microsoft, "live.co.uk": Microsoft, "live.fr": Microsoft, "outlook.fr": Microsoft,
	"outlook.de": Microsoft, "outlook.es": Microsoft,

	"yahoo.com": Yahoo, "yahoo.co.uk": Yahoo, "yahoo.fr": Yahoo, "yahoo.de": Yahoo, "yahoo.es": Yahoo,
	"yahoo.it": Yahoo, "yahoo.ca": Yahoo, "yahoo.com.br": Yahoo, "ymail.com": Yahoo, "rocketmail.com": Yahoo,
	"aol.com": Yahoo, "aim.com": Yahoo,

	"icloud.com": Apple, "me.com": Apple, "mac.com": Apple,

	"gmx.net": GMX, "gmx.de": GMX, "gmx.at": GMX, "gmx.ch": GMX, "gmx.com": GMX, "web.de": GMX, "mail.com": GMX,

	"mail.ru": MailRu, "inbox.ru": MailRu, "list.ru": MailRu, "bk.ru": MailRu,

	"yandex.ru": Yandex, "yandex.com": Yandex, "ya.ru": Yandex,

	"zoho.com": Zoho, "zohomail.com": Zoho,

	"orange.fr": Orange, "wanadoo.fr": Orange,

	"comcast.net": Comcast,

	"proton.me": Proton, "protonmail.com": Proton, "protonmail.ch": Proton, "pm.me": Proton,

	"fastmail.com": Fastmail, "fastmail.fm": Fastmail,

	"qq.com": Tencent, "foxmail.com": Tencent,

	"163.com": NetEase, "126.com": NetEase, "yeah.net": NetEase,

	"naver.com": Naver,

	"t-online.de": TOnline,

	"libero.it": Libero,

	"free.fr": Free,

	"seznam.cz": Seznam, "email.cz": Seznam,
}

// byMX is the providers' MX host domains: a domain whose most preferred
// MX host is one of these, or under one, is theirs (Google Workspace's
// aspmx.l.google.com, smtp.google.com; Microsoft 365's
// <tenant>.mail.protection.outlook.com and, with DNSSEC,
// <tenant>.mx.microsoft; Outlook.com's *.olc.protection.outlook.com;
// Yahoo's and AOL's *.yahoodns.net).
var byMX = map[string]Provider{
	"google.com": Google, "googlemail.com": Google,

	"protection.outlook.com": Microsoft, "mx.microsoft": Microsoft, "hotmail.com": Microsoft,

	"yahoodns.net": Yahoo,

	"icloud.com": Apple,

	"gmx.net": GMX, "gmx.com": GMX, "gmx.de": GMX, "web.de": GMX, "mail.com": GMX,

	"ionos.com": IONOS, "ionos.de": IONOS, "ionos.co.uk": IONOS, "ionos.fr": IONOS, "ionos.es": IONOS,
	"kundenserver.de": IONOS, "1and1.com": IONOS,

	"mail.ru": MailRu,

	"yandex.ru": Yandex, "yandex.net": Yandex,

	"zoho.com": Zoho, "zoho.eu": Zoho, "zoho.in": Zoho, "zohomail.com": Zoho,

	"orange.fr": Orange,

	"comcast.net": Comcast,

	"protonmail.ch": Proton,

	"messagingengine.com": Fastmail,

	"qq.com": Tencent,

	"netease.com": NetEase, "163.com": NetEase,

	"naver.com": Naver,

	"t-online.de": TOnline,

	"libero.it": Libero,

	"free.fr": Free,

	"seznam.cz": Seznam,

	"mimecast.com": Mimecast, "mimecast.co.za": Mimecast,

	"pphosted.com": Proofpoint, "ppe-hosted.com": Proofpoint,

	"barracudanetworks.com": Barracuda,
}

// ForDomain returns the provider whose users' addresses are at domain
// (gmail.com: Google), and false for any other domain, which only its MX
// hosts can place. domain is compared in lower case, without a final dot.
func ForDomain(domain string) (Provider, bool) {
	p, ok := byDomain[clean(domain)]
	return p, ok
}

// ForMX returns the provider of a domain whose MX hosts are hosts, most
// preferred first: the provider of the first host that is, or is under,
// one of the table's MX domains, or Other when none is. No hosts (a
// domain without mail servers, or a null MX, RFC 7505) is Other too.
func ForMX(hosts []string) Provider {
	for _, h := range hosts {
		if p, ok := forHost(clean(h)); ok {
			return p
		}
	}
	return Other
}

// forHost looks host and each parent domain of it up in byMX.
func forHost(host string) (Provider, bool) {
	for host != "" {
		if p, ok := byMX[host]; ok {
			return p, true
		}
		i := strings.IndexByte(host, '.')
		if i < 0 {
			break
		}
		host = host[i+1:]
	}
	return "", false
}

// TableDomains returns the domains ForDomain knows and their providers,
// for a query to place them without a stored lookup.
func TableDomains() (domains []string, providers []Provider) {
	for d, p := range byDomain {
		domains, providers = append(domains, d), append(providers, p)
	}
	return domains, providers
}

func clean(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

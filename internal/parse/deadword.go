package parse

// The dead-mailbox model. Mail servers word "this mailbox does not exist"
// in many ways, but nearly always as two parts in one clause: a noun that
// names the mailbox (user, mailbox, recipient, account, address; in
// French, German, Spanish, Italian, Portuguese, Russian, Chinese and
// Japanese too) and a predicate that denies it exists (unknown, not
// found, does not exist, no such, invalid). Postfix's "User unknown in
// virtual mailbox table", Gmail's "The email account that you tried to
// reach does not exist", Orange's "Adresse d au moins un destinataire
// invalide", GMX's "Benutzer unbekannt" and Mail.ru's "user not found"
// are all that shape. Reading the shape rather than a list of whole
// sentences finds the wordings no table has met. The words are matched
// in the same single pass as the phrase table (their rules carry a role
// instead of a reason), so the model costs nothing more than a look at
// the few hits.

// Roles of the model's words.
const (
	roleNoun = 1 + iota
	roleDomain
	rolePred
	roleOff
)

// maxDeadHits bounds the words remembered from one text.
const maxDeadHits = 16

// Gaps allowed between the two parts, in bytes of text: a predicate may
// follow its noun after a short relative clause ("account that you
// tried to reach does not exist"), or stand just before it ("no such
// user", "unknown recipient").
const (
	maxGapAfter  = 48
	maxGapBefore = 12
)

var deadNouns = []string{
	"|user|", "|users|", "|username|", "|mailbox", "|mail box|", "|recipient", "|address|", "|addressee|",
	"|account|", "|email account|", "|e-mail account|", "|local part|", "|local-part|", "|mailbox name|",
	"|destinataire|", "|utilisateur|", "|adresse|", "|boite aux lettres|", "|boîte aux lettres|", "|compte|",
	"|empfänger|", "|empfaenger|", "|benutzer|", "|postfach|", "|nutzer|", "|adressat|",
	"|destinatario|", "|casella|", "|utente|", "|indirizzo|", "|cuenta|", "|buzón|", "|buzon|", "|usuario|",
	"|usuário|", "|destinatário|", "|caixa postal|", "|conta|",
	"|пользовател", "|ящик", "|адрес", "|получател", "|аккаунт", "|учетная запись",
	"|Пользовател", "|Ящик", "|Адрес", "|Получател", "|Аккаунт", "|Учетная запись", // matching folds ASCII only
	"用户", "邮箱", "收件人", "帐户", "账户", "ユーザ", "宛先", "メールアドレス",
}

// deadDomains name a host or domain: with a predicate they say the
// domain does not exist ("Host unknown", "domain not found", "host
// example.org not found"). DNS trouble that may pass ("Host not found,
// try again") is read by higher-ranked phrases first.
var deadDomains = []string{
	"|domain|", "|host|", "|hostname|", "|host name|", "|domain name|", "|domaine|", "|dominio|", "|домен",
}

var deadPreds = []string{
	"|unknown|", "|not found|", "|does not exist|", "|doesn't exist|", "|do not exist|", "|not exist|",
	"|no such|", "|nonexistent|", "|non-existent|", "|non existent|", "|nonexisting|", "|non-existing|",
	"|inexistent|", "|not valid|", "|invalid|", "|not known|", "|not recognized|", "|not recognised|",
	"|unrecognized|", "|illegal|", "|no longer exists|", "|could not be found|", "|couldn't be found|",
	"|cannot be found|", "|can't be found|", "|has been deleted|", "|was deleted|", "|is deleted|",
	"|inconnu|", "|inconnue|", "|introuvable|", "|n'existe pas|", "|n existe pas|", "|inexistant|", "|inexistante|",
	"|invalide|", "|unbekannt|", "|existiert nicht|", "|nicht vorhanden|", "|ungültig|", "|ungueltig|",
	"|nicht gefunden|", "|sconosciuto|", "|sconosciuta|", "|inesistente|", "|non esiste|", "|desconocido|",
	"|no existe|", "|inexistente|", "|inválido|", "|invalido|", "|não existe|", "|desconhecido|",
	"не существует", "не найден", "неизвестн", "Неизвестн", "несуществующ", "不存在", "存在しない", "存在しません", "見つかりません",
}

// offPreds say a mailbox exists but is switched off (suspended,
// inactive, locked): with a mailbox noun they read as a disabled
// mailbox, which is soft, and outrank the unknown-user words said with
// them (not a X.1.1 code, which still says the address is gone).
var offPreds = []string{
	"|inactive|", "|deactivated|", "|disabled|", "|suspended|", "|locked|", "|frozen|", "|blocked|", "|closed|",
	"|désactivé|", "|desactive|", "|suspendu|", "|bloqué|", "|gesperrt|", "|deaktiviert|", "|inaktiv|",
	"|disattivato|", "|sospeso|", "|bloccato|", "|desactivado|", "|suspendido|", "|bloqueado|", "|desativado|",
	"заблокирован", "отключен",
}

// deadWords returns the model's words as rules of the phrase table.
func deadWords() []textRule {
	out := make([]textRule, 0, len(deadNouns)+len(deadDomains)+len(deadPreds)+len(offPreds))
	for _, w := range deadNouns {
		out = append(out, textRule{phrase: w, role: roleNoun})
	}
	for _, w := range deadDomains {
		out = append(out, textRule{phrase: w, role: roleDomain})
	}
	for _, w := range deadPreds {
		out = append(out, textRule{phrase: w, role: rolePred})
	}
	for _, w := range offPreds {
		out = append(out, textRule{phrase: w, role: roleOff})
	}
	return out
}

// deadHit is one word of the model found in a text: [start, end).
type deadHit struct {
	role       uint8
	start, end int
}

// deadScan collects the model's words during the phrase pass.
type deadScan struct {
	hits [maxDeadHits]deadHit
	n    int
}

// add records a word ending at end (inclusive) of n normalised bytes.
func (d *deadScan) add(role uint8, end, n int) {
	if d.n == len(d.hits) {
		return
	}
	// The raw text may be longer than the normalised phrase where white
	// space was collapsed; the start is then a little late, which only
	// makes the gaps look smaller by that much.
	d.hits[d.n] = deadHit{role: role, start: max(0, end+1-n), end: end + 1}
	d.n++
}

// find returns the reason and words of the first clause where a noun
// and a predicate stand close enough, or "". A mailbox noun reads as an
// unknown user, a host or domain noun as an unknown domain; a mailbox
// noun with words saying it is switched off, as a disabled mailbox,
// which wins over the rest.
func (d *deadScan) find(text string) (Reason, string) {
	var reason Reason
	var words string
	for i := 0; i < d.n; i++ {
		p := d.hits[i]
		if p.role != rolePred && p.role != roleOff {
			continue
		}
		for j := 0; j < d.n; j++ {
			nn := d.hits[j]
			if nn.role != roleNoun && nn.role != roleDomain || p.role == roleOff && nn.role != roleNoun {
				continue
			}
			var w string
			switch {
			case nn.end <= p.start && p.start-nn.end <= maxGapAfter && !clauseBreak(text[nn.end:p.start]):
				w = text[nn.start:p.end]
			case p.end <= nn.start && nn.start-p.end <= maxGapBefore && !clauseBreak(text[p.end:nn.start]):
				w = text[p.start:nn.end]
			default:
				continue
			}
			switch {
			case p.role == roleOff:
				return ReasonMailboxDisabled, w
			case reason == "" && nn.role == roleDomain:
				reason, words = ReasonDomainUnknown, w
			case reason == "":
				reason, words = ReasonUserUnknown, w
			}
		}
	}
	return reason, words
}

// clauseBreak reports punctuation that ends a clause: the two parts must
// be in one. A dot inside a word (a domain name) does not end one.
func clauseBreak(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';', '!', '?', '(', ')', '[', ']':
			return true
		case '.', ':':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t' || s[i+1] == '\n' {
				return true
			}
		}
	}
	return false
}

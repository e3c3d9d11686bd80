package parse

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// CodeInfo describes one RFC 3463 subject.detail pair, as registered at
// IANA's "Enhanced Status Codes" registry.
type CodeInfo struct {
	Code      string `json:"code"` // "X.1.1"
	Title     string `json:"title"`
	TitleES   string `json:"title_es"`
	Meaning   string `json:"meaning"`
	MeaningES string `json:"meaning_es"`
	Reference string `json:"reference"`
	// Reason is what a failure with this code means for the recipient
	// when nothing in the diagnostic text says more.
	Reason Reason `json:"reason"`
}

// subjects names the middle digit of a code (RFC 3463 section 3).
var subjects = [8][2]string{
	{"Other or undefined status", "Estado indefinido u otro"},
	{"Addressing status", "Estado de la dirección"},
	{"Mailbox status", "Estado del buzón"},
	{"Mail system status", "Estado del sistema de correo"},
	{"Network and routing status", "Estado de la red o del enrutamiento"},
	{"Mail delivery protocol status", "Estado del protocolo de entrega"},
	{"Message content or media status", "Estado del contenido del mensaje"},
	{"Security or policy status", "Estado de seguridad o de política"},
}

// catalog is keyed by "subject.detail". Meanings are written for senders.
var catalog = map[string]CodeInfo{
	"0.0": {"X.0.0", "Other undefined status", "Estado indefinido", "No more detail than the class is available.", "No hay más información que la clase del error.", "RFC 3463", ReasonOther},

	"1.0":  {"X.1.0", "Other address status", "Otro estado de la dirección", "Something about the address caused the failure.", "Algo en la dirección causó el fallo.", "RFC 3463", ReasonUserUnknown},
	"1.1":  {"X.1.1", "Bad destination mailbox address", "Dirección de buzón de destino errónea", "The mailbox (the part before @) does not exist at the destination.", "El buzón (la parte antes de la @) no existe en el destino.", "RFC 3463", ReasonUserUnknown},
	"1.2":  {"X.1.2", "Bad destination system address", "Dirección del sistema de destino errónea", "The destination domain (the part after @) does not exist or cannot receive mail.", "El dominio de destino (la parte tras la @) no existe o no puede recibir correo.", "RFC 3463", ReasonDomainUnknown},
	"1.3":  {"X.1.3", "Bad destination mailbox address syntax", "Sintaxis incorrecta de la dirección de destino", "The recipient address is not a valid address.", "La dirección del destinatario no tiene una sintaxis válida.", "RFC 3463", ReasonBadSyntax},
	"1.4":  {"X.1.4", "Destination mailbox address ambiguous", "Dirección de destino ambigua", "The address matches more than one mailbox at the destination.", "La dirección coincide con más de un buzón en el destino.", "RFC 3463", ReasonUserUnknown},
	"1.5":  {"X.1.5", "Destination address valid", "Dirección de destino válida", "The address is valid; used in success reports.", "La dirección es válida; se usa en informes de éxito.", "RFC 3463", ReasonDelivered},
	"1.6":  {"X.1.6", "Destination mailbox has moved, no forwarding address", "El buzón de destino se ha trasladado sin dirección de reenvío", "The address once existed but no longer accepts mail.", "La dirección existió pero ya no acepta correo.", "RFC 3463", ReasonHasMoved},
	"1.7":  {"X.1.7", "Bad sender's mailbox address syntax", "Sintaxis incorrecta de la dirección del remitente", "The sender address is malformed; fix the envelope sender.", "La dirección del remitente está mal formada; corrija el remitente del sobre.", "RFC 3463", ReasonSenderRejected},
	"1.8":  {"X.1.8", "Bad sender's system address", "Dirección del sistema del remitente errónea", "The sender's domain does not exist or cannot receive replies.", "El dominio del remitente no existe o no puede recibir respuestas.", "RFC 3463", ReasonSenderRejected},
	"1.9":  {"X.1.9", "Message relayed to non-compliant mailer", "Mensaje retransmitido a un servidor no conforme", "The message was relayed to a system that does not return delivery reports.", "El mensaje se retransmitió a un sistema que no devuelve informes de entrega.", "RFC 3886", ReasonDelivered},
	"1.10": {"X.1.10", "Recipient address has null MX", "La dirección del destinatario tiene un MX nulo", "The recipient's domain publishes a null MX: it accepts no mail at all.", "El dominio del destinatario publica un MX nulo: no acepta correo.", "RFC 7505", ReasonDomainUnknown},

	"2.0": {"X.2.0", "Other or undefined mailbox status", "Otro estado del buzón", "The mailbox exists but something about it caused the failure.", "El buzón existe pero algo en él causó el fallo.", "RFC 3463", ReasonOther},
	"2.1": {"X.2.1", "Mailbox disabled, not accepting messages", "Buzón deshabilitado", "The mailbox exists but is disabled or suspended.", "El buzón existe pero está deshabilitado o suspendido.", "RFC 3463", ReasonMailboxDisabled},
	"2.2": {"X.2.2", "Mailbox full", "Buzón lleno", "The recipient is over quota.", "El destinatario ha superado su cuota.", "RFC 3463", ReasonMailboxFull},
	"2.3": {"X.2.3", "Message length exceeds administrative limit", "El mensaje supera el límite administrativo de tamaño", "The message is larger than this mailbox accepts.", "El mensaje es mayor de lo que acepta este buzón.", "RFC 3463", ReasonMessageTooLarge},
	"2.4": {"X.2.4", "Mailing list expansion problem", "Problema al expandir la lista de correo", "The address is a mailing list that could not be expanded.", "La dirección es una lista de correo que no pudo expandirse.", "RFC 3463", ReasonSystemError},

	"3.0": {"X.3.0", "Other or undefined mail system status", "Otro estado del sistema de correo", "The destination system failed for an unspecified reason.", "El sistema de destino falló por un motivo no especificado.", "RFC 3463", ReasonSystemError},
	"3.1": {"X.3.1", "Mail system full", "Sistema de correo lleno", "The destination system is out of storage.", "El sistema de destino no tiene espacio.", "RFC 3463", ReasonSystemError},
	"3.2": {"X.3.2", "System not accepting network messages", "El sistema no acepta mensajes de la red", "The destination is not accepting mail now (maintenance or overload).", "El destino no acepta correo ahora (mantenimiento o sobrecarga).", "RFC 3463", ReasonSystemError},
	"3.3": {"X.3.3", "System not capable of selected features", "El sistema no admite las funciones solicitadas", "The destination does not support a feature the message needs.", "El destino no admite una función que el mensaje necesita.", "RFC 3463", ReasonSystemError},
	"3.4": {"X.3.4", "Message too big for system", "Mensaje demasiado grande para el sistema", "The message is larger than the destination system accepts.", "El mensaje es mayor de lo que acepta el sistema de destino.", "RFC 3463", ReasonMessageTooLarge},
	"3.5": {"X.3.5", "System incorrectly configured", "Sistema configurado incorrectamente", "The destination system is misconfigured.", "El sistema de destino está mal configurado.", "RFC 3463", ReasonSystemError},
	"3.6": {"X.3.6", "Requested priority was changed", "Se cambió la prioridad solicitada", "The message was accepted at a different priority.", "El mensaje se aceptó con otra prioridad.", "RFC 6710", ReasonDelivered},

	"4.0": {"X.4.0", "Other or undefined network or routing status", "Otro estado de red o enrutamiento", "A network or routing problem occurred.", "Ocurrió un problema de red o de enrutamiento.", "RFC 3463", ReasonNetworkError},
	"4.1": {"X.4.1", "No answer from host", "Sin respuesta del servidor", "The destination server did not answer.", "El servidor de destino no respondió.", "RFC 3463", ReasonNetworkError},
	"4.2": {"X.4.2", "Bad connection", "Conexión defectuosa", "The connection dropped or timed out during the transaction.", "La conexión se cortó o agotó el tiempo durante la transacción.", "RFC 3463", ReasonNetworkError},
	"4.3": {"X.4.3", "Directory server failure", "Fallo del servidor de directorio", "A directory (often DNS) lookup failed.", "Falló una consulta de directorio (a menudo DNS).", "RFC 3463", ReasonNetworkError},
	"4.4": {"X.4.4", "Unable to route", "Imposible enrutar", "No route to the destination domain exists (often no MX or A record).", "No existe ruta al dominio de destino (a menudo sin registro MX ni A).", "RFC 3463", ReasonDomainUnknown},
	"4.5": {"X.4.5", "Mail system congestion", "Congestión del sistema de correo", "The destination is congested; try later.", "El destino está congestionado; reintente más tarde.", "RFC 3463", ReasonRateLimited},
	"4.6": {"X.4.6", "Routing loop detected", "Bucle de enrutamiento detectado", "The message looped between servers.", "El mensaje entró en un bucle entre servidores.", "RFC 3463", ReasonNetworkError},
	"4.7": {"X.4.7", "Delivery time expired", "Tiempo de entrega agotado", "The message stayed queued too long and was given up.", "El mensaje estuvo en cola demasiado tiempo y se abandonó.", "RFC 3463", ReasonExpired},

	"5.0": {"X.5.0", "Other or undefined protocol status", "Otro estado del protocolo", "An SMTP protocol error occurred between the servers.", "Ocurrió un error del protocolo SMTP entre los servidores.", "RFC 3463", ReasonProtocolError},
	"5.1": {"X.5.1", "Invalid command", "Comando no válido", "The sending server used a command out of sequence or not supported (SMTP 503): a sender-side problem.", "El servidor emisor usó un comando fuera de secuencia o no admitido (SMTP 503): problema del remitente.", "RFC 3463", ReasonProtocolError},
	"5.2": {"X.5.2", "Syntax error", "Error de sintaxis", "The sending server sent a command that could not be understood.", "El servidor emisor envió un comando que no se pudo interpretar.", "RFC 3463", ReasonProtocolError},
	"5.3": {"X.5.3", "Too many recipients", "Demasiados destinatarios", "More recipients than the destination allows in one transaction.", "Más destinatarios de los permitidos en una transacción.", "RFC 3463", ReasonProtocolError},
	"5.4": {"X.5.4", "Invalid command arguments", "Argumentos de comando no válidos", "A command had arguments the destination does not accept.", "Un comando tenía argumentos que el destino no acepta.", "RFC 3463", ReasonProtocolError},
	"5.5": {"X.5.5", "Wrong protocol version", "Versión de protocolo incorrecta", "The servers disagree on the protocol version.", "Los servidores no coinciden en la versión del protocolo.", "RFC 3463", ReasonProtocolError},
	"5.6": {"X.5.6", "Authentication exchange line is too long", "Línea de autenticación demasiado larga", "The sender's AUTH exchange exceeded the line length limit.", "El intercambio AUTH del remitente superó la longitud de línea.", "RFC 4954", ReasonAuthFailure},

	"6.0":  {"X.6.0", "Other or undefined media error", "Otro error del contenido", "Something in the message content caused the failure.", "Algo en el contenido del mensaje causó el fallo.", "RFC 3463", ReasonPolicyRejected},
	"6.1":  {"X.6.1", "Media not supported", "Medio no admitido", "The message content type is not supported at the destination.", "El tipo de contenido no se admite en el destino.", "RFC 3463", ReasonPolicyRejected},
	"6.2":  {"X.6.2", "Conversion required and prohibited", "Se requiere conversión y está prohibida", "The content needs a conversion that is not allowed.", "El contenido necesita una conversión que no está permitida.", "RFC 3463", ReasonPolicyRejected},
	"6.3":  {"X.6.3", "Conversion required but not supported", "Se requiere conversión y no se admite", "The content needs a conversion the destination cannot do.", "El contenido necesita una conversión que el destino no puede hacer.", "RFC 3463", ReasonPolicyRejected},
	"6.4":  {"X.6.4", "Conversion with loss performed", "Conversión con pérdida realizada", "Delivered, but converting the content lost some data.", "Entregado, pero la conversión perdió parte del contenido.", "RFC 3463", ReasonDelivered},
	"6.5":  {"X.6.5", "Conversion failed", "La conversión falló", "A required content conversion failed.", "Falló una conversión de contenido necesaria.", "RFC 3463", ReasonPolicyRejected},
	"6.6":  {"X.6.6", "Message content not available", "Contenido del mensaje no disponible", "The referenced message content (BURL) could not be fetched.", "No se pudo obtener el contenido referenciado (BURL).", "RFC 4468", ReasonSystemError},
	"6.7":  {"X.6.7", "Non-ASCII addresses not permitted for that sender/recipient", "Direcciones no ASCII no permitidas para ese remitente o destinatario", "An internationalised address cannot be used on this path.", "No se puede usar una dirección internacionalizada en esta ruta.", "RFC 6531", ReasonPolicyRejected},
	"6.8":  {"X.6.8", "UTF-8 string reply is required, but not permitted by the SMTP client", "Se requiere respuesta UTF-8 pero el cliente no la permite", "The reply needs UTF-8 but the sending client did not offer SMTPUTF8.", "La respuesta requiere UTF-8 pero el cliente no ofreció SMTPUTF8.", "RFC 6531", ReasonProtocolError},
	"6.9":  {"X.6.9", "UTF-8 header message cannot be transferred to one or more recipients", "El mensaje con cabeceras UTF-8 no puede transferirse", "A message with UTF-8 headers cannot go to a server without SMTPUTF8.", "Un mensaje con cabeceras UTF-8 no puede ir a un servidor sin SMTPUTF8.", "RFC 6531", ReasonPolicyRejected},
	"6.10": {"X.6.10", "UTF-8 string reply is required, but not permitted by the SMTP client", "Se requiere respuesta UTF-8 pero el cliente no la permite", "Same as X.6.8, registered twice by RFC 6531.", "Igual que X.6.8, registrado dos veces por el RFC 6531.", "RFC 6531", ReasonProtocolError},

	"7.0":  {"X.7.0", "Other or undefined security status", "Otro estado de seguridad", "A security or policy check failed; 530 5.7.0 usually means the sender must authenticate.", "Falló una comprobación de seguridad o política; 530 5.7.0 suele indicar que el remitente debe autenticarse.", "RFC 3463", ReasonPolicyRejected},
	"7.1":  {"X.7.1", "Delivery not authorized, message refused", "Entrega no autorizada, mensaje rechazado", "The destination refused the message by policy (spam filter, block list, relay rule).", "El destino rechazó el mensaje por política (filtro antispam, lista de bloqueo, regla de relay).", "RFC 3463", ReasonPolicyRejected},
	"7.2":  {"X.7.2", "Mailing list expansion prohibited", "Expansión de lista de correo prohibida", "The sender may not post to this mailing list.", "El remitente no puede enviar a esta lista de correo.", "RFC 3463", ReasonPolicyRejected},
	"7.3":  {"X.7.3", "Security conversion required but not possible", "Se requiere conversión de seguridad y no es posible", "A needed security conversion cannot be done.", "No se puede realizar una conversión de seguridad necesaria.", "RFC 3463", ReasonPolicyRejected},
	"7.4":  {"X.7.4", "Security features not supported", "Funciones de seguridad no admitidas", "The message uses security features the destination does not support.", "El mensaje usa funciones de seguridad que el destino no admite.", "RFC 3463", ReasonPolicyRejected},
	"7.5":  {"X.7.5", "Cryptographic failure", "Fallo criptográfico", "The destination could not verify or decrypt the message.", "El destino no pudo verificar ni descifrar el mensaje.", "RFC 3463", ReasonPolicyRejected},
	"7.6":  {"X.7.6", "Cryptographic algorithm not supported", "Algoritmo criptográfico no admitido", "The message needs an algorithm the destination does not support.", "El mensaje necesita un algoritmo que el destino no admite.", "RFC 3463", ReasonPolicyRejected},
	"7.7":  {"X.7.7", "Message integrity failure", "Fallo de integridad del mensaje", "The message was altered or corrupted in transit.", "El mensaje se alteró o corrompió en tránsito.", "RFC 3463", ReasonPolicyRejected},
	"7.8":  {"X.7.8", "Authentication credentials invalid", "Credenciales de autenticación no válidas", "The sending client's SMTP AUTH credentials were rejected.", "Se rechazaron las credenciales SMTP AUTH del cliente emisor.", "RFC 4954", ReasonAuthFailure},
	"7.9":  {"X.7.9", "Authentication mechanism is too weak", "Mecanismo de autenticación demasiado débil", "The sending client must use a stronger AUTH mechanism.", "El cliente emisor debe usar un mecanismo AUTH más fuerte.", "RFC 4954", ReasonAuthRequired},
	"7.10": {"X.7.10", "Encryption needed", "Se necesita cifrado", "The sending client must use TLS before this command.", "El cliente emisor debe usar TLS antes de este comando.", "RFC 5248", ReasonAuthRequired},
	"7.11": {"X.7.11", "Encryption required for requested authentication mechanism", "Se requiere cifrado para el mecanismo de autenticación", "The AUTH mechanism chosen needs TLS first.", "El mecanismo AUTH elegido necesita TLS antes.", "RFC 4954", ReasonAuthRequired},
	"7.12": {"X.7.12", "A password transition is needed", "Se necesita un cambio de contraseña", "The sending account must change its password.", "La cuenta emisora debe cambiar su contraseña.", "RFC 4954", ReasonAuthFailure},
	"7.13": {"X.7.13", "User account disabled", "Cuenta de usuario deshabilitada", "The authenticated sending account is disabled.", "La cuenta emisora autenticada está deshabilitada.", "RFC 5248", ReasonAuthFailure},
	"7.14": {"X.7.14", "Trust relationship required", "Se requiere una relación de confianza", "The destination only accepts mail from servers it trusts.", "El destino solo acepta correo de servidores de confianza.", "RFC 5248", ReasonAuthRequired},
	"7.15": {"X.7.15", "Priority level is too low", "Nivel de prioridad demasiado bajo", "The requested priority is too low for delivery now.", "La prioridad solicitada es demasiado baja para entregar ahora.", "RFC 6710", ReasonPolicyRejected},
	"7.16": {"X.7.16", "Message is too big for the specified priority", "Mensaje demasiado grande para la prioridad indicada", "Send it at a lower priority or smaller.", "Envíelo con menor prioridad o más pequeño.", "RFC 6710", ReasonMessageTooLarge},
	"7.17": {"X.7.17", "Mailbox owner has changed", "El propietario del buzón ha cambiado", "The address now belongs to someone else (RRVS).", "La dirección pertenece ahora a otra persona (RRVS).", "RFC 7293", ReasonHasMoved},
	"7.18": {"X.7.18", "Domain owner has changed", "El propietario del dominio ha cambiado", "The domain changed hands since the address was collected (RRVS).", "El dominio cambió de propietario desde que se obtuvo la dirección (RRVS).", "RFC 7293", ReasonHasMoved},
	"7.19": {"X.7.19", "RRVS test cannot be completed", "No se puede completar la prueba RRVS", "The destination cannot check the address's registration date.", "El destino no puede comprobar la fecha de registro de la dirección.", "RFC 7293", ReasonOther},
	"7.20": {"X.7.20", "No passing DKIM signature found", "No hay firma DKIM válida", "The message had no DKIM signature that verified.", "El mensaje no tenía ninguna firma DKIM que se verificara.", "RFC 7372", ReasonAuthFailure},
	"7.21": {"X.7.21", "No acceptable DKIM signature found", "No hay firma DKIM aceptable", "DKIM signatures verified but none met the destination's policy.", "Las firmas DKIM se verificaron pero ninguna cumplió la política del destino.", "RFC 7372", ReasonAuthFailure},
	"7.22": {"X.7.22", "No valid author-matched DKIM signature found", "No hay firma DKIM alineada con el autor", "No valid DKIM signature matches the From domain.", "Ninguna firma DKIM válida coincide con el dominio del From.", "RFC 7372", ReasonAuthFailure},
	"7.23": {"X.7.23", "SPF validation failed", "Falló la validación SPF", "The sending IP is not allowed by the sender domain's SPF record.", "La IP emisora no está autorizada por el registro SPF del dominio.", "RFC 7372", ReasonAuthFailure},
	"7.24": {"X.7.24", "SPF validation error", "Error en la validación SPF", "The sender domain's SPF record could not be evaluated.", "No se pudo evaluar el registro SPF del dominio remitente.", "RFC 7372", ReasonAuthFailure},
	"7.25": {"X.7.25", "Reverse DNS validation failed", "Falló la validación del DNS inverso", "The sending IP has no matching reverse DNS (PTR) record.", "La IP emisora no tiene un registro de DNS inverso (PTR) coincidente.", "RFC 7372", ReasonSpamBlocked},
	"7.26": {"X.7.26", "Multiple authentication checks failed", "Fallaron varias comprobaciones de autenticación", "SPF, DKIM and/or DMARC failed together.", "Fallaron a la vez SPF, DKIM y/o DMARC.", "RFC 7372", ReasonAuthFailure},
	"7.27": {"X.7.27", "Sender address has null MX", "La dirección del remitente tiene un MX nulo", "The sender's domain publishes a null MX, so bounces cannot be returned.", "El dominio del remitente publica un MX nulo, así que no se pueden devolver rebotes.", "RFC 7505", ReasonSenderRejected},
	"7.28": {"X.7.28", "Mail flood detected", "Se detectó una avalancha de correo", "The destination saw an unusual flood of mail from this sender.", "El destino detectó un volumen inusual de correo de este remitente.", "IANA registry", ReasonRateLimited},
	"7.29": {"X.7.29", "ARC validation failure", "Falló la validación ARC", "The message's ARC chain did not validate.", "La cadena ARC del mensaje no se validó.", "RFC 8617", ReasonAuthFailure},
	"7.30": {"X.7.30", "REQUIRETLS support required", "Se requiere soporte de REQUIRETLS", "The message requires TLS on every hop and a hop cannot provide it.", "El mensaje exige TLS en cada salto y un salto no puede ofrecerlo.", "RFC 8689", ReasonProtocolError},
}

// Catalog returns every registered subject.detail pair, in code order.
func Catalog() []CodeInfo {
	keys := make([]string, 0, len(catalog))
	for k := range catalog {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		si, di, _ := strings.Cut(keys[i], ".")
		sj, dj, _ := strings.Cut(keys[j], ".")
		if si != sj {
			return atoiSmall(si) < atoiSmall(sj)
		}
		return atoiSmall(di) < atoiSmall(dj)
	})
	out := make([]CodeInfo, len(keys))
	for i, k := range keys {
		out[i] = catalog[k]
	}
	return out
}

func atoiSmall(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Lookup returns the catalog entry for a code's subject and detail.
func Lookup(s Status) (CodeInfo, bool) {
	info, ok := catalog[s.SubjectDetail()]
	return info, ok
}

// Explanation is what bounced says about one status code.
type Explanation struct {
	Code       Status `json:"code"`
	ClassName  string `json:"class_name"` // success, transient, permanent
	Subject    string `json:"subject"`
	SubjectES  string `json:"subject_es"`
	Title      string `json:"title"`
	TitleES    string `json:"title_es"`
	Meaning    string `json:"meaning"`
	MeaningES  string `json:"meaning_es"`
	Reference  string `json:"reference"`
	Registered bool   `json:"registered"`
	ReplyCode  string `json:"reply_code,omitempty"`
	ReplyText  string `json:"reply_text,omitempty"`
	Reason     Reason `json:"reason"`
	Class      Class  `json:"class"`
	Suppress   bool   `json:"suppress"`
	Advice     string `json:"advice"`
	// Why explains a decision that may surprise, such as a permanent
	// code that does not suppress.
	Why   string `json:"why,omitempty"`
	WhyES string `json:"why_es,omitempty"`
}

// ErrUnknownCode is returned by Explain for text that is no status code.
var ErrUnknownCode = errors.New("parse: unknown status code")

// Explain describes an enhanced status code ("5.1.3", "513") or a bare
// SMTP reply code ("550"), in English and Spanish. Three digits that form
// a reply code RFC 5321 defines are read as one; others ("510", "422") as
// an enhanced code written without dots.
func Explain(code string) (Explanation, error) {
	code = strings.TrimSpace(code)
	var reply string
	st, err := ParseStatus(code)
	if meaning := ReplyMeaning(code); meaning != "" {
		reply, st, err = code, StatusFromReply(code), nil
	}
	if err != nil {
		return Explanation{}, fmt.Errorf("%w: %q", ErrUnknownCode, code)
	}
	sd := st.SubjectDetail()
	subj, _, _ := strings.Cut(sd, ".")
	e := Explanation{Code: st, ReplyCode: reply, ReplyText: ReplyMeaning(reply)}
	switch st.Class() {
	case 2:
		e.ClassName = "success"
	case 4:
		e.ClassName = "transient"
	case 5:
		e.ClassName = "permanent"
	}
	if n := atoiSmall(subj); n < len(subjects) {
		e.Subject, e.SubjectES = subjects[n][0], subjects[n][1]
	}
	info, ok := catalog[sd]
	if ok {
		e.Registered = true
		e.Title, e.TitleES = info.Title, info.TitleES
		e.Meaning, e.MeaningES = info.Meaning, info.MeaningES
		e.Reference = info.Reference
	}
	e.Reason, e.Class = ClassifyStatus(st, reply, "")
	e.Suppress = e.Class.Suppresses()
	e.Advice = advice(e.Class, e.Reason)
	if st.Class() == 5 && !e.Suppress && e.Class != ClassSender {
		what := string(st)
		if reply != "" {
			what = reply + " (" + string(st) + ")"
		}
		e.Why = "A permanent failure, yet not enough to suppress: " + what + " alone says delivery failed, not why. " +
			"A mailbox that does not exist, a policy or spam rejection and a block-list hit all use it, so suppressing on it would drop good addresses. " +
			"bounced suppresses when the reply says the mailbox is gone (a code such as 5.1.1, or text such as \"user unknown\"); otherwise it counts the failure as soft."
		e.WhyES = "Un fallo permanente que no basta para suprimir: " + what + " solo dice que la entrega falló, no por qué. " +
			"Lo usan tanto un buzón inexistente como un rechazo por política, spam o lista negra, así que suprimir con él descartaría direcciones buenas. " +
			"bounced suprime cuando la respuesta dice que el buzón no existe (un código como 5.1.1, o un texto como \"user unknown\"); si no, cuenta el fallo como temporal."
	}
	return e, nil
}

func advice(c Class, r Reason) string {
	switch c {
	case ClassHard:
		return "Stop mailing this address: it is suppressed. Correct it only if the user gives a new one."
	case ClassComplaint:
		return "The recipient complained: it is suppressed. Never mail it again without new consent."
	case ClassSender:
		return "Fix the sending setup (authentication, relay permission, SPF/DKIM/DMARC, protocol use); the recipient is not at fault and is not suppressed."
	case ClassNone:
		return "Nothing to do."
	}
	switch r {
	case ReasonMailboxFull, ReasonMailboxDisabled:
		return "Retry later; the address is suppressed only after repeated soft failures."
	case ReasonSpamBlocked, ReasonPolicyRejected:
		return "Check your sending reputation, content and block-list status; retry later."
	case ReasonRateLimited:
		return "Slow down sending to this domain and retry later."
	}
	return "Retry later; repeated soft failures suppress the address."
}

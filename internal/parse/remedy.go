package parse

// Remedy says what a sender-side failure means and how the sender fixes
// it, in English and Spanish. Sender-side failures (class sender) are the
// sending setup's fault, never the recipient's: the operator must act.
type Remedy struct {
	Title     string `json:"title"`
	TitleES   string `json:"title_es"`
	Meaning   string `json:"meaning"`
	MeaningES string `json:"meaning_es"`
	Fix       string `json:"fix"`
	FixES     string `json:"fix_es"`
}

// senderRemedies covers every reason of class sender.
var senderRemedies = map[Reason]Remedy{
	ReasonAuthRequired: {
		Title:     "Authentication required",
		TitleES:   "Se requiere autenticación",
		Meaning:   "The server the message was handed to accepts it only from clients that authenticate (SMTP AUTH), or that use TLS first; the usual reply is 530 5.7.0.",
		MeaningES: "El servidor que recibió el mensaje solo lo acepta de clientes que se autentican (SMTP AUTH) o que usan TLS antes; la respuesta habitual es 530 5.7.0.",
		Fix:       "Give the sending application the SMTP user and password (or API key) of its submission server, on port 587 with STARTTLS or 465 with TLS, or send through a relay that authorises your servers' IP addresses.",
		FixES:     "Configure en la aplicación que envía el usuario y la contraseña SMTP (o la clave de API) de su servidor de envío, en el puerto 587 con STARTTLS o en el 465 con TLS, o envíe a través de un relay que autorice las IP de sus servidores.",
	},
	ReasonAuthFailure: {
		Title:     "Sender authentication failed",
		TitleES:   "Falló la autenticación del remitente",
		Meaning:   "Either the SMTP credentials were refused (5.7.8), or the message failed the receiver's SPF, DKIM or DMARC checks (5.7.20 to 5.7.26).",
		MeaningES: "O se rechazaron las credenciales SMTP (5.7.8), o el mensaje no superó las comprobaciones SPF, DKIM o DMARC del receptor (5.7.20 a 5.7.26).",
		Fix:       "Read the status code of each example: renew the SMTP credentials for 5.7.8; for SPF, DKIM and DMARC failures list every sending IP in the SPF record, sign with DKIM in the From domain, publish a DMARC record, and check a test message's Authentication-Results header.",
		FixES:     "Lea el código de estado de cada ejemplo: renueve las credenciales SMTP ante un 5.7.8; ante fallos de SPF, DKIM y DMARC incluya todas las IP de envío en el registro SPF, firme con DKIM en el dominio del From, publique un registro DMARC y compruebe la cabecera Authentication-Results de un mensaje de prueba.",
	},
	ReasonRelayDenied: {
		Title:     "Relaying denied",
		TitleES:   "Relay denegado",
		Meaning:   "The server refused to pass the message on to a domain it does not host: the mail went to the wrong server, or came from an address or client the server does not relay for.",
		MeaningES: "El servidor se negó a reenviar el mensaje a un dominio que no aloja: el correo llegó al servidor equivocado, o vino de una dirección o un cliente para el que no hace de relay.",
		Fix:       "Send through your own outgoing server (smarthost) and authenticate to it, or ask the relay's administrator to allow your servers' IP addresses; check that the application does not hand mail to a server that only receives for its own domains.",
		FixES:     "Envíe a través de su propio servidor de salida (smarthost) autenticándose en él, o pida al administrador del relay que autorice las IP de sus servidores; compruebe que la aplicación no entrega el correo a un servidor que solo recibe para sus propios dominios.",
	},
	ReasonProtocolError: {
		Title:     "SMTP protocol error",
		TitleES:   "Error del protocolo SMTP",
		Meaning:   "The sending software broke the SMTP dialogue: a command out of sequence (503 5.5.1, such as RCPT before MAIL, or DATA after every recipient was refused), a syntax error, too many recipients, or an extension the message needs (SMTPUTF8, REQUIRETLS) that a server lacks.",
		MeaningES: "El software que envía rompió el diálogo SMTP: un comando fuera de secuencia (503 5.5.1, como RCPT antes de MAIL, o DATA después de que se rechazaran todos los destinatarios), un error de sintaxis, demasiados destinatarios, o una extensión que el mensaje necesita (SMTPUTF8, REQUIRETLS) y que un servidor no ofrece.",
		Fix:       "Find in the sending software's SMTP log the command the server refused and the one before it; fix or upgrade the client or library, stop after a refused command instead of pipelining on, and keep within the server's limit of recipients per message.",
		FixES:     "Busque en el registro SMTP del software que envía el comando que el servidor rechazó y el anterior; corrija o actualice el cliente o la biblioteca, deténgase tras un comando rechazado en lugar de seguir enviando, y respete el límite de destinatarios por mensaje del servidor.",
	},
	ReasonSenderRejected: {
		Title:     "Sender address rejected",
		TitleES:   "Dirección del remitente rechazada",
		Meaning:   "The envelope sender (MAIL FROM, the Return-Path) or its domain was refused: malformed, in a domain that does not exist or accepts no mail (null MX), or not allowed to send through that server.",
		MeaningES: "Se rechazó el remitente del sobre (MAIL FROM, el Return-Path) o su dominio: mal formado, de un dominio que no existe o que no acepta correo (MX nulo), o sin permiso para enviar por ese servidor.",
		Fix:       "Use an envelope sender in a domain you control that has MX records and receives bounces, and check the Return-Path the sending application sets.",
		FixES:     "Use un remitente de sobre de un dominio que controle, con registros MX y que reciba los rebotes, y revise el Return-Path que fija la aplicación que envía.",
	},
}

// codeFixes are fixes more precise than their reason's, by the
// subject.detail of a sender-side status code.
var codeFixes = map[string][2]string{
	"5.1": {
		"A command came out of order: most often RCPT before MAIL, MAIL before a required AUTH or STARTTLS, or DATA after every recipient was refused. Fix the command the server refused before this one, then the client's sequence.",
		"Un comando llegó fuera de orden: casi siempre RCPT antes de MAIL, MAIL antes de un AUTH o STARTTLS obligatorio, o DATA después de rechazarse todos los destinatarios. Corrija primero el comando que el servidor rechazó antes de este y después la secuencia del cliente.",
	},
	"5.3": {
		"Send fewer recipients per message (per transaction) than the server's limit, or let the client split the list.",
		"Envíe menos destinatarios por mensaje (por transacción) que el límite del servidor, o deje que el cliente divida la lista.",
	},
	"7.8": {
		"Correct or renew the SMTP user and password (or app password or API key) configured in the sending application.",
		"Corrija o renueve el usuario y la contraseña SMTP (o la contraseña de aplicación o la clave de API) configurados en la aplicación que envía.",
	},
	"7.10": {
		"Turn on STARTTLS (or TLS on port 465) in the sending client before it authenticates.",
		"Active STARTTLS (o TLS en el puerto 465) en el cliente que envía antes de que se autentique.",
	},
	"7.11": {
		"Turn on STARTTLS (or TLS on port 465) in the sending client before it authenticates.",
		"Active STARTTLS (o TLS en el puerto 465) en el cliente que envía antes de que se autentique.",
	},
	"7.20": {
		"Sign every message with DKIM, with a key published in DNS, and check that the signature survives your own systems (footers, link rewriting).",
		"Firme cada mensaje con DKIM, con una clave publicada en el DNS, y compruebe que la firma sobrevive a sus propios sistemas (pies de página, reescritura de enlaces).",
	},
	"7.21": {
		"Sign with a DKIM key the receiver accepts: RSA of at least 1024 bits (2048 recommended) and a current algorithm.",
		"Firme con una clave DKIM que el receptor acepte: RSA de al menos 1024 bits (se recomiendan 2048) y un algoritmo actual.",
	},
	"7.22": {
		"Sign with DKIM in the domain of the From address (d= equal to it or a parent), not only in your provider's domain.",
		"Firme con DKIM en el dominio de la dirección From (d= igual a él o a un dominio padre), no solo en el dominio de su proveedor.",
	},
	"7.23": {
		"Add every IP address that sends for the envelope sender's domain (or your provider's include:) to its SPF record, and keep the record within 10 DNS lookups.",
		"Añada al registro SPF del dominio del remitente del sobre todas las IP que envían por él (o el include: de su proveedor), y mantenga el registro dentro de 10 consultas DNS.",
	},
	"7.24": {
		"Repair the SPF record of the envelope sender's domain: one TXT record starting v=spf1, valid syntax, at most 10 DNS lookups, and DNS servers that answer.",
		"Repare el registro SPF del dominio del remitente del sobre: un solo registro TXT que empiece por v=spf1, sintaxis válida, como mucho 10 consultas DNS y servidores DNS que respondan.",
	},
	"7.26": {
		"Make SPF or DKIM pass in the From domain (aligned) and publish a DMARC record for it; large mailbox providers require this of bulk senders.",
		"Haga que SPF o DKIM se superen en el dominio del From (alineados) y publique un registro DMARC para él; los grandes proveedores de buzones lo exigen a los remitentes masivos.",
	},
	"7.27": {
		"The envelope sender's domain publishes a null MX: use an envelope sender in a domain that receives mail, so bounces can come back.",
		"El dominio del remitente del sobre publica un MX nulo: use un remitente de sobre de un dominio que reciba correo, para que los rebotes puedan volver.",
	},
}

// SenderRemedy returns what a sender-side reason means and how to fix it;
// ok is false for a reason whose class is not sender.
func SenderRemedy(r Reason) (Remedy, bool) {
	rem, ok := senderRemedies[r]
	return rem, ok && r.Class() == ClassSender
}

// SenderFix returns how to fix one sender-side failure with reason r and
// status code st (empty when the report gave none): the code's own fix
// where it says more than the reason's (SPF for 5.7.23), else the
// reason's. Both are empty for a reason whose class is not sender.
func SenderFix(r Reason, st Status) (fix, fixES string) {
	rem, ok := SenderRemedy(r)
	if !ok {
		return "", ""
	}
	if f, ok := codeFixes[st.SubjectDetail()]; ok && st.Class() != 2 {
		return f[0], f[1]
	}
	return rem.Fix, rem.FixES
}

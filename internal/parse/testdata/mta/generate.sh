#!/bin/bash
# Regenerates the MTA bounce corpus (see README.md). Run as root on a
# Debian machine from the repository root:
#
#   bash internal/parse/testdata/mta/generate.sh [postfix] [exim] [opensmtpd] [sendmail] [courier] [dma] [nullmailer]
#
# MTACORPUS_ONLY=vendor,vendor sends only those vendors' cases and keeps
# the other rows and files as they are.
#
# Each MTA is installed from apt, configured to take mail only from the
# local sendmail command (no listener on any port) and to relay every
# message to the mtacorpus sink on 127.0.0.1:2525, run until every
# message has bounced into the local user bsender's Maildir, then
# stopped and purged: the MTAs conflict as packages, so they run
# one at a time. Nothing is sent anywhere but 127.0.0.1. (dma delivers
# locally only to an mbox, which its flush moves into the Maildir;
# nullmailer has no local delivery, so the sink takes its bounces for
# bsender and delivers them.)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
out=internal/parse/testdata/mta
mtas=("$@")
[ ${#mtas[@]} -eq 0 ] && mtas=(postfix exim opensmtpd sendmail courier dma nullmailer)
go build -o /tmp/mtacorpus ./internal/mtacorpus
id bsender >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin bsender
export DEBIAN_FRONTEND=noninteractive

maildir_reset() {
	rm -rf /home/bsender/Maildir
	install -d -o bsender -g bsender -m 700 /home/bsender/Maildir /home/bsender/Maildir/new /home/bsender/Maildir/cur /home/bsender/Maildir/tmp
}

purge() {
	apt-get purge -y -q "$@" >/dev/null
	apt-get autoremove -y -q >/dev/null
}

run_postfix() {
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get install -y -q postfix >/dev/null
	cat >/etc/postfix/main.cf <<'CF'
compatibility_level = 3.6
myhostname = mta.test
mydomain = mta.test
myorigin = mta.test
mydestination = mta.test, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [127.0.0.1]:2525
smtp_tls_security_level = none
home_mailbox = Maildir/
alias_maps =
alias_database =
maximal_queue_lifetime = 2m
bounce_queue_lifetime = 2m
queue_run_delay = 15s
minimal_backoff_time = 15s
maximal_backoff_time = 30s
delay_warning_time = 0
biff = no
CF
	# No smtpd listener at all: mail comes in through sendmail only.
	postconf -M# smtp/inet
	postconf -F '*/*/chroot = n'
	newaliases 2>/dev/null || true
	postfix start
	maildir_reset
	/tmp/mtacorpus -mta postfix -out "$out" -flush "postqueue -f" -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	postfix stop
	purge postfix
}

run_exim() {
	apt-get install -y -q exim4-daemon-light >/dev/null
	service exim4 stop >/dev/null 2>&1 || true
	cat >/etc/exim4/exim4.conf <<'CF'
primary_hostname = mta.test
domainlist local_domains = mta.test : localhost
qualify_domain = mta.test
daemon_smtp_ports =
never_users = root
tls_advertise_hosts =
begin acl
begin routers
sink:
  driver = manualroute
  domains = ! +local_domains
  transport = remote_smtp
  route_list = * 127.0.0.1
  self = send
local_user:
  driver = accept
  check_local_user
  transport = local_maildir
begin transports
remote_smtp:
  driver = smtp
  port = 2525
  hosts_avoid_tls = *
local_maildir:
  driver = appendfile
  directory = $home/Maildir
  maildir_format
  delivery_date_add
  envelope_to_add
  return_path_add
begin retry
*   *   F,2m,20s
begin rewrite
CF
	rm -f /var/spool/exim4/db/*
	maildir_reset
	/tmp/mtacorpus -mta exim -out "$out" -flush "exim4 -qff" -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	rm -f /etc/exim4/exim4.conf
	purge exim4-base exim4-config exim4-daemon-light
}

run_opensmtpd() {
	apt-get install -y -q opensmtpd >/dev/null
	service opensmtpd stop >/dev/null 2>&1 || true
	cat >/etc/smtpd.conf <<'CF'
queue ttl 2m
action "local" maildir "%{user.directory}/Maildir"
action "sink" relay host smtp://127.0.0.1:2525
match from local for domain "mta.test" action "local"
match from local for any action "sink"
CF
	echo mta.test >/etc/mailname
	smtpd -n -f /etc/smtpd.conf
	smtpd -f /etc/smtpd.conf
	maildir_reset
	/tmp/mtacorpus -mta opensmtpd -out "$out" -flush "smtpctl schedule all" -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	service opensmtpd stop >/dev/null 2>&1 || true
	purge opensmtpd
}

run_sendmail() {
	apt-get install -y -q sendmail-bin sendmail-cf procmail m4 >/dev/null
	service sendmail stop >/dev/null 2>&1 || true
	pkill -x sendmail >/dev/null 2>&1 || true
	cat >/etc/mail/corpus.mc <<'MC'
divert(-1)
# Mail from the local sendmail command only (no listener), relayed to the
# sink, local mail delivered by procmail, transient failures given up on
# after two minutes.
divert(0)dnl
include(`/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(`bounced mtacorpus')dnl
OSTYPE(`debian')dnl
define(`confDOMAIN_NAME', `mta.test')dnl
define(`confSERVICE_SWITCH_FILE', `/etc/mail/corpus.switch')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confTO_QUEUERETURN', `2m')dnl
define(`confTO_QUEUEWARN', `1h')dnl
define(`confDELIVERY_MODE', `background')dnl
dnl Every message its own connection, and no host status kept between
dnl them: one message's transient refusal must not defer the others to
dnl the same host with its reply.
define(`confMCI_CACHE_SIZE', `0')dnl
define(`confTO_HOSTSTATUS', `0s')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h 2525')dnl
define(`SMTP_MAILER_ARGS', `TCP $h 2525')dnl
define(`RELAY_MAILER_ARGS', `TCP $h 2525')dnl
FEATURE(`nocanonify')dnl
FEATURE(`local_procmail')dnl
LOCAL_DOMAIN(`mta.test')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
MAILER(`procmail')dnl
MC
	printf 'hosts files\n' >/etc/mail/corpus.switch
	m4 /etc/mail/corpus.mc >/etc/mail/sendmail.cf
	# sendmail sleeps a minute at every start unless its host name
	# resolves to a qualified one: name it in /etc/hosts while it runs.
	cp /etc/hosts /etc/hosts.mtacorpus
	{ echo "127.0.0.1 $(hostname).mta.test $(hostname) mta.test"; grep -v 'mta\.test' /etc/hosts.mtacorpus; } >/etc/hosts
	chown root:smmsp /var/spool/mqueue && chmod 2770 /var/spool/mqueue
	printf 'MAILDIR=$HOME/Maildir/\nDEFAULT=$HOME/Maildir/\n' >/home/bsender/.procmailrc
	chown bsender /home/bsender/.procmailrc
	# The submission program would hand mail to a listener on port 25;
	# -Am queues it with the MTA's own configuration instead.
	printf '#!/bin/sh\nexec /usr/sbin/sendmail -Am "$@"\n' >/tmp/sendmail-am
	chmod +x /tmp/sendmail-am
	/usr/sbin/sendmail -q10s
	maildir_reset
	/tmp/mtacorpus -mta sendmail -out "$out" -sendmail /tmp/sendmail-am -flush "/usr/sbin/sendmail -q" -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	pkill -x sendmail >/dev/null 2>&1 || pkill -f 'sendmail: Queue runner' || true
	cat /etc/hosts.mtacorpus >/etc/hosts && rm -f /etc/hosts.mtacorpus
	rm -f /home/bsender/.procmailrc /etc/mail/corpus.mc /etc/mail/corpus.switch /tmp/sendmail-am
	purge sendmail-bin sendmail-cf sendmail-base procmail
}

run_courier() {
	echo "courier-base courier-base/webadmin-configmode boolean false" | debconf-set-selections
	apt-get install -y -q courier-mta >/dev/null
	courier stop >/dev/null 2>&1 || true
	# No esmtpd: mail comes in through sendmail only. Everything goes to
	# the sink; local mail to ~/Maildir, its users found by authdaemond.
	echo mta.test >/etc/courier/me
	echo mta.test >/etc/courier/defaultdomain
	printf 'mta.test\nlocalhost\n' >/etc/courier/locals
	echo ':[127.0.0.1],2525' >/etc/courier/esmtproutes
	echo 2m >/etc/courier/queuetime
	echo 15s >/etc/courier/retryalpha
	echo 3 >/etc/courier/retrybeta
	echo 15s >/etc/courier/retrygamma
	echo 1 >/etc/courier/retrymaxdelta
	echo 1h >/etc/courier/warntime
	authdaemond start >/dev/null 2>&1 || true
	courier start
	maildir_reset
	/tmp/mtacorpus -mta courier -out "$out" -flush "courier flush" -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	courier stop >/dev/null 2>&1 || true
	authdaemond stop >/dev/null 2>&1 || true
	purge courier-mta courier-base courier-authdaemon courier-authlib
}

run_dma() {
	apt-get install -y -q dma >/dev/null
	# No listener (dma has none); everything not for mta.test to the
	# sink. Mail for a user at MAILNAME is local: dma appends it to the
	# mbox /var/mail/USER, the only local delivery it has.
	cat >/etc/dma/dma.conf <<'CF'
SMARTHOST 127.0.0.1
PORT 2525
MAILNAME mta.test
CF
	# dma has no daemon: every message gets its own background process,
	# which retries a transient failure until the queue file is older
	# than a compiled-in five days (MAX_TIMEOUT) and then bounces it.
	# The flush ages queue files that are more than two minutes old past
	# that, so those processes give up at their next try, which dma -q
	# brings on at once. It then moves the bounces from the mbox into
	# the Maildir (dma locks the mbox with flock; its mboxrd quoting,
	# one '>' before />*From /, is undone).
	cat >/tmp/dma-flush <<'SH'
#!/bin/sh
find /var/spool/dma -maxdepth 1 -name 'Q*' -mmin +2 -exec touch -d '6 days ago' {} +
/usr/sbin/dma -q
mbox=/var/mail/bsender
[ -s "$mbox" ] || exit 0
exec 9<"$mbox"
flock 9
awk -v dir=/home/bsender/Maildir/new -v stamp="$(date +%s)" -v pid=$$ '
function emit() {
	if (n == 0) return
	f = dir "/" stamp "." pid "_" ++m ".dma"
	for (i = 1; i <= n; i++) print buf[i] > f
	close(f); n = 0
}
/^From / { if (n > 0 && buf[n] == "") n--; emit(); next }
{ if ($0 ~ /^>+From /) $0 = substr($0, 2); buf[++n] = $0 }
END { emit() }
' "$mbox" && : >"$mbox"
chown -R bsender:bsender /home/bsender/Maildir/new
SH
	chmod +x /tmp/dma-flush
	rm -f /var/spool/dma/*
	: >/var/mail/bsender && chown bsender:mail /var/mail/bsender && chmod 660 /var/mail/bsender
	maildir_reset
	/tmp/mtacorpus -mta dma -lf -out "$out" -flush /tmp/dma-flush -wait 10m -only "${MTACORPUS_ONLY:-}" || status=$?
	/tmp/dma-flush
	rm -f /tmp/dma-flush /var/spool/dma/*
	purge dma
}

run_nullmailer() {
	apt-get install -y -q nullmailer >/dev/null
	service nullmailer stop >/dev/null 2>&1 || true
	# nullmailer relays everything to its remotes and has no local
	# delivery: nullmailer-send gives a message that failed for good, or
	# outlived queuelifetime, to nullmailer-dsn and queues the DSN for
	# the sender like any other mail, so it too goes to the sink, which
	# (-deliver) puts mail for bsender@mta.test into the Maildir.
	# nullmailer-send takes the first d.d.d in the reply for the DSN's
	# status; where that is part of an IP address (gmx/blocklisted,
	# comcast/bl000000: "192.0.2.10" gives 2.0.2) nullmailer-dsn refuses
	# it and no bounce is made at all: those two are always missing, so
	# the wait is bounded at six minutes (every other bounce is in
	# after about three) and the run reports them.
	echo mta.test >/etc/nullmailer/me
	echo mta.test >/etc/nullmailer/defaultdomain
	echo mta.test >/etc/nullmailer/defaulthost
	: >/etc/nullmailer/adminaddr
	echo '127.0.0.1 smtp --port=2525' >/etc/nullmailer/remotes
	echo 120 >/etc/nullmailer/queuelifetime
	echo 15 >/etc/nullmailer/pausetime
	echo 30 >/etc/nullmailer/maxpause
	echo 120 >/etc/nullmailer/sendtimeout
	rm -f /var/spool/nullmailer/queue/* /var/spool/nullmailer/failed/*
	start-stop-daemon --start --background --chuid mail --chdir /var/spool/nullmailer \
		--make-pidfile --pidfile /tmp/nullmailer-send.pid --exec /usr/sbin/nullmailer-send
	# Pulling the trigger (a FIFO) runs the queue at once; the write
	# blocks if nullmailer-send is not reading, so it is bounded.
	printf '#!/bin/sh\ntimeout 5 sh -c "echo 1 >/var/spool/nullmailer/trigger" || true\n' >/tmp/nullmailer-flush
	chmod +x /tmp/nullmailer-flush
	maildir_reset
	/tmp/mtacorpus -mta nullmailer -lf -deliver -out "$out" -flush /tmp/nullmailer-flush -wait 6m -only "${MTACORPUS_ONLY:-}" || status=$?
	start-stop-daemon --stop --quiet --pidfile /tmp/nullmailer-send.pid --retry 10 || true
	rm -f /tmp/nullmailer-send.pid /tmp/nullmailer-flush
	purge nullmailer
	rm -rf /etc/nullmailer /var/spool/nullmailer
}

# A run that misses bounces still stops and removes its MTA, then fails.
status=0
for m in "${mtas[@]}"; do
	"run_$m"
done
exit $status

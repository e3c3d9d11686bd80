package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for ClientOptions.
const (
	TimeoutDefault = 15 * time.Second
	// ResponseReadMax is the most of a receiver's answer read: its status
	// is what counts, the body only explains a failure.
	ResponseReadMax = 64 << 10
	// URLMaxLen bounds a subscription's URL.
	URLMaxLen = 2000
)

// ClientOptions configure the outbound client.
type ClientOptions struct {
	// Timeout bounds one attempt: connecting, sending, the answer's
	// headers and the read of its body.
	Timeout time.Duration
	// AllowPrivate lets deliveries go to loopback, private, link-local and
	// other non-public addresses (a receiver on the same network); off,
	// they are refused.
	AllowPrivate bool
}

// ErrForbiddenDestination means a URL leads to an address deliveries may
// not go to (see ClientOptions.AllowPrivate).
var ErrForbiddenDestination = errors.New("push: destination not allowed")

// nonPublic are the ranges besides loopback, private, link-local,
// multicast and unspecified addresses that no public receiver uses.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use IPv4/IPv6 translation
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("100::/64"),       // discard
	netip.MustParsePrefix("2002::/16"),      // 6to4, which can embed any IPv4 address
	netip.MustParsePrefix("2001::/32"),      // Teredo, likewise
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("255.255.255.255/32"),
}

// CheckAddress reports why deliveries may not go to ip (nil when they
// may): a loopback, private, link-local, multicast, unspecified or other
// non-public address, unless allowPrivate.
func CheckAddress(ip netip.Addr, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	ip = ip.Unmap()
	bad := ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid()
	for _, p := range nonPublic {
		bad = bad || p.Contains(ip)
	}
	if bad {
		return fmt.Errorf("%w: %s is not a public address (BOUNCED_OUTBOUND_ALLOW_PRIVATE allows it)", ErrForbiddenDestination, ip)
	}
	return nil
}

// CheckURL validates a subscription's URL: absolute http or https, a
// host, no user or password (deliveries are authenticated by their
// signature), within URLMaxLen; and a literal address must be allowed
// (names are checked on each connection, on the address dialled).
func CheckURL(raw string, allowPrivate bool) error {
	if len(raw) > URLMaxLen {
		return fmt.Errorf("push: the URL is longer than %d characters", URLMaxLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("push: not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("push: the URL must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("push: the URL has no host")
	case u.User != nil:
		return errors.New("push: the URL may not hold a user or password; receivers authenticate deliveries by their signature")
	case u.Fragment != "":
		return errors.New("push: the URL may not have a fragment")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		return CheckAddress(ip, allowPrivate)
	}
	if h := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); !allowPrivate && (h == "localhost" || strings.HasSuffix(h, ".localhost")) {
		return fmt.Errorf("%w: %s is this machine (BOUNCED_OUTBOUND_ALLOW_PRIVATE allows it)", ErrForbiddenDestination, h)
	}
	return nil
}

// NewClient returns the client deliveries are sent with: bounded by
// opts.Timeout, following no redirect (a 3xx is a failed attempt, as
// Standard Webhooks asks), through no proxy, and refusing, at each
// connection, addresses CheckAddress refuses.
func NewClient(opts ClientOptions) *http.Client {
	timeout := cmp.Or(opts.Timeout, TimeoutDefault)
	dialer := &net.Dialer{
		Timeout: timeout,
		// Control sees the address actually dialled, after DNS: a name
		// resolving to a private address (or rebinding to one) is refused
		// as the address itself would be.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %q", ErrForbiddenDestination, address)
			}
			return CheckAddress(ap.Addr(), opts.AllowPrivate)
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// attemptError is what an attempt's failure records: the transport's
// error without the URL it names, which may hold a receiver's token.
func attemptError(ctx context.Context, err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return "no answer within the timeout"
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "no answer within the timeout"
	}
	return err.Error()
}

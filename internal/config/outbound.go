package config

import (
	"fmt"
	"strconv"
	"time"
)

// Defaults of Outbound (push.WorkersDefault, push.TimeoutDefault,
// push.MaxAttemptsDefault, api.StreamMaxDefault and
// store.ChangesRetentionDefault).
const (
	OutboundWorkersDefault     = 4
	OutboundTimeoutDefault     = 15 * time.Second
	OutboundMaxAttemptsDefault = 15
	StreamMaxDefault           = 100
	ChangesRetentionDefault    = 7 * 24 * time.Hour
)

// Outbound tunes how changes of the suppression lists are pushed:
// outbound webhook deliveries and GET /v1/stream.
type Outbound struct {
	// Workers is how many deliveries this process sends at once; 0 sends
	// none (other replicas do).
	Workers     int64
	Timeout     time.Duration
	MaxAttempts int64
	// AllowPrivate lets subscriptions reach loopback, private and other
	// non-public addresses.
	AllowPrivate bool
	// StreamMax caps the streams open at once.
	StreamMax int64
	// ChangesRetention is how long changes and deliveries are kept: how
	// far back a stream resumes and a delivery can be replayed.
	ChangesRetention time.Duration
}

func defaultOutbound() Outbound {
	return Outbound{Workers: OutboundWorkersDefault, Timeout: OutboundTimeoutDefault, MaxAttempts: OutboundMaxAttemptsDefault,
		StreamMax: StreamMaxDefault, ChangesRetention: ChangesRetentionDefault}
}

func (o *Outbound) options() []option {
	return []option{
		intOpt("outbound-workers", "BOUNCED_OUTBOUND_WORKERS", "outbound webhook deliveries this process sends at once (0: none; other replicas send them)", &o.Workers),
		durOpt("outbound-timeout", "BOUNCED_OUTBOUND_TIMEOUT", "how long one delivery attempt waits for the receiver's answer", &o.Timeout),
		intOpt("outbound-max-attempts", "BOUNCED_OUTBOUND_MAX_ATTEMPTS", "attempts a delivery gets before it is dead (replay it over the API)", &o.MaxAttempts),
		flagBoolOpt("outbound-allow-private", "BOUNCED_OUTBOUND_ALLOW_PRIVATE", "let subscriptions reach loopback, private and other non-public addresses", &o.AllowPrivate),
		intOpt("stream-max", "BOUNCED_STREAM_MAX", "GET /v1/stream connections open at once; more get 503", &o.StreamMax),
		durOpt("changes-retention", "BOUNCED_CHANGES_RETENTION", "how long changes and deliveries are kept: how far back a stream resumes and a delivery can be replayed", &o.ChangesRetention),
	}
}

func (o Outbound) validate() error {
	switch {
	case o.Workers < 0 || o.Workers > 64:
		return fmt.Errorf("config: outbound-workers: %d is not between 0 and 64", o.Workers)
	case o.Timeout < time.Second || o.Timeout > 5*time.Minute:
		return fmt.Errorf("config: outbound-timeout: %v is not between 1s and 5m", o.Timeout)
	case o.MaxAttempts < 1 || o.MaxAttempts > 100:
		return fmt.Errorf("config: outbound-max-attempts: %d is not between 1 and 100", o.MaxAttempts)
	case o.StreamMax < 1 || o.StreamMax > 100_000:
		return fmt.Errorf("config: stream-max: %d is not between 1 and 100000", o.StreamMax)
	case o.ChangesRetention < time.Hour || o.ChangesRetention > 366*24*time.Hour:
		return fmt.Errorf("config: changes-retention: %v is not between 1h and 8784h (366 days)", o.ChangesRetention)
	}
	return nil
}

func flagBoolOpt(name, env, usage string, p *bool) option {
	return option{flag: name, env: env, usage: usage,
		set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			*p = b
			return nil
		},
		get: func() string { return strconv.FormatBool(*p) }}
}

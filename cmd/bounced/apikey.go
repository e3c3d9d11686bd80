package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bounced/bounced/internal/store"
)

const apikeyText = `Subcommands:
  create --name NAME --scope SCOPE[,SCOPE...] [--tenant T] [--rate N] [--burst N] [--json] [--token-only]
         creates a key and prints its token once; store it now (only its hash is kept)
  list   [--json]
         lists the keys, revoked ones too
  revoke ID|NAME
         revokes a key at once, in every replica

Scopes: suppressions:read suppressions:write events:read events:write policy:write admin
Beside a running bounced serve on the private PostgreSQL, apikey uses that
server. 'bounced apikey SUBCOMMAND --help' shows a subcommand's flags.
`

// apikeyHelp is the help of apikey (sub "") or of one subcommand, whose
// flags are bound to the variables in f.
func apikeyHelp(sub string, f *apikeyFlags) help {
	switch sub {
	case "create":
		return help{name: "apikey create", settings: true, flags: f.create,
			usage: "usage: bounced apikey create --name NAME --scope SCOPE[,SCOPE...] [--tenant T] [--rate N] [--burst N] [--json] [--token-only]",
			text:  "Creates an API key and prints its token once: store it now, only its hash is kept.\nScopes: suppressions:read suppressions:write events:read events:write policy:write admin\n"}
	case "list":
		return help{name: "apikey list", usage: "usage: bounced apikey list [--json]", settings: true, flags: f.common, text: "Lists every API key: id, name, prefix, scopes, tenant, created, last used, revoked.\n"}
	case "revoke":
		return help{name: "apikey revoke", usage: "usage: bounced apikey revoke ID|NAME", settings: true, flags: f.common, text: "Revokes the active key with that id or name, at once and in every replica.\n"}
	}
	return help{name: "apikey", text: apikeyText}
}

// apikeyFlags are the flags of the apikey subcommands.
type apikeyFlags struct {
	name, scopes, tenant string
	rateLimit            float64
	burst                int
	asJSON, tokenOnly    bool
}

func (f *apikeyFlags) common(fs *flag.FlagSet) {
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

func (f *apikeyFlags) create(fs *flag.FlagSet) {
	f.common(fs)
	fs.StringVar(&f.name, "name", "", "the key's name, recorded as the actor of its changes (required)")
	fs.StringVar(&f.scopes, "scope", "", "comma-separated scopes (required)")
	fs.StringVar(&f.tenant, "tenant", "", "bind the key to this tenant")
	fs.Float64Var(&f.rateLimit, "rate", 0, "requests per second for this key (0: the server default)")
	fs.IntVar(&f.burst, "burst", 0, "burst above the rate (0: one second's worth)")
	fs.BoolVar(&f.tokenOnly, "token-only", false, "print only the token (TOKEN=$(bounced apikey create ... --token-only))")
}

// apikey manages API keys: create, list, revoke.
func apikey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f apikeyFlags
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		apikeyHelp("", &f).write(stdout)
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		apikeyHelp("", &f).write(stderr)
		return usageError{"apikey needs a subcommand: create, list or revoke"}
	}
	sub, args := args[0], args[1:]
	if sub != "create" && sub != "list" && sub != "revoke" {
		apikeyHelp("", &f).write(stderr)
		return usageError{fmt.Sprintf("unknown apikey subcommand %q", sub)}
	}
	cfg, rest, done, err := loadCommand(apikeyHelp(sub, &f), args, getenv, stdout)
	if done {
		return err
	}
	name, scopes, tenant, rateLimit, burst, asJSON := f.name, f.scopes, f.tenant, f.rateLimit, f.burst, f.asJSON
	switch {
	case sub == "revoke" && len(rest) != 1:
		return usageError{"apikey revoke takes one key id or name"}
	case sub != "revoke" && len(rest) > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", rest[0])}
	case sub == "create" && (name == "" || scopes == ""):
		return usageError{"apikey create needs --name and --scope"}
	case f.tokenOnly && asJSON:
		return usageError{"apikey create: --token-only and --json exclude each other"}
	}
	db, closeDB, err := openDBShared(ctx, cfg, newLogger(cfg, stderr), nil, true)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	switch sub {
	case "create":
		nk := store.NewAPIKey{Name: name, Tenant: tenant, CreatedBy: "cli"}
		for _, s := range strings.Split(scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				nk.Scopes = append(nk.Scopes, store.KeyScope(s))
			}
		}
		if rateLimit > 0 {
			nk.RateLimit = &rateLimit
		}
		if burst > 0 {
			nk.RateBurst = &burst
		}
		k, token, err := db.CreateAPIKey(ctx, nk)
		if errors.Is(err, store.ErrBadKey) {
			return usageError{err.Error()}
		}
		if err != nil {
			return err
		}
		switch {
		case asJSON:
			return json.NewEncoder(stdout).Encode(struct {
				store.APIKey
				Token string `json:"token"`
			}{k, token})
		case f.tokenOnly:
			fmt.Fprintln(stdout, token)
			return nil
		}
		fmt.Fprintf(stdout, "created key %d %q (scopes %s%s)\n", k.ID, k.Name, joinScopes(k.Scopes), tenantNote(k.Tenant))
		fmt.Fprintf(stdout, "token: %s\n", token)
		fmt.Fprintln(stdout, "This is the only time the token is shown; only its hash is stored.")
	case "list":
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			if keys == nil {
				keys = []store.APIKey{}
			}
			return json.NewEncoder(stdout).Encode(keys)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tTENANT\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, joinScopes(k.Scopes), dash(k.Tenant),
				k.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		k, err := db.RevokeAPIKey(ctx, rest[0])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no active key with id or name %q", rest[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %d %q\n", k.ID, k.Name)
	}
	return nil
}

func joinScopes(s []store.KeyScope) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}

func tenantNote(t string) string {
	if t == "" {
		return ""
	}
	return ", tenant " + t
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

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

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/store"
)

const apikeyUsage = `usage: bounced apikey <create|list|revoke> [flags]

  create --name NAME --scope SCOPE[,SCOPE...] [--tenant T] [--rate N] [--burst N] [--json]
         prints the token once; store it now (only its hash is kept)
  list   [--json]
  revoke ID|NAME

scopes: suppressions:read suppressions:write events:read events:write policy:write admin
The database flags of serve apply (--database-url, --data-dir, ...).
`

// apikey manages API keys: create, list, revoke.
func apikey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, apikeyUsage)
		return usageError{"apikey needs a subcommand: create, list or revoke"}
	}
	sub, args := args[0], args[1:]
	var name, scopes, tenant string
	var rateLimit float64
	var burst int
	var asJSON bool
	extra := func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		if sub == "create" {
			fs.StringVar(&name, "name", "", "the key's name, recorded as the actor of its changes")
			fs.StringVar(&scopes, "scope", "", "comma-separated scopes")
			fs.StringVar(&tenant, "tenant", "", "bind the key to this tenant")
			fs.Float64Var(&rateLimit, "rate", 0, "requests per second for this key (0: the server default)")
			fs.IntVar(&burst, "burst", 0, "burst above the rate (0: one second's worth)")
		}
	}
	cfg, rest, err := config.LoadCommand("apikey", args, getenv, stderr, extra)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, apikeyUsage)
			return err
		}
		return usageError{err.Error()}
	}
	switch {
	case sub != "create" && sub != "list" && sub != "revoke":
		fmt.Fprint(stderr, apikeyUsage)
		return usageError{fmt.Sprintf("unknown apikey subcommand %q", sub)}
	case sub == "revoke" && len(rest) != 1:
		return usageError{"apikey revoke takes one key id or name"}
	case sub != "revoke" && len(rest) > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", rest[0])}
	case sub == "create" && (name == "" || scopes == ""):
		return usageError{"apikey create needs --name and --scope"}
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
		if asJSON {
			return json.NewEncoder(stdout).Encode(struct {
				store.APIKey
				Token string `json:"token"`
			}{k, token})
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

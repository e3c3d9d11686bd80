package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeNamesEveryCommand keeps the README's "Command line" section,
// the top-level help and each command's own help in step: every command,
// and every flag a command's help lists, appears in the other two.
func TestReadmeNamesEveryCommand(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	top := topUsage()
	if !bytes.Contains(readme, []byte("```\n"+top+"```\n")) {
		t.Errorf("README.md's Command line section is not the output of bounced help; paste it again:\n%s", top)
	}
	flagRE := regexp.MustCompile(`(?m)^  -([a-z][a-z-]+)`)
	helpOf := func(args ...string) string {
		var out bytes.Buffer
		if err := run(context.Background(), append(args, "--help"), env(), nil, &out, io.Discard); err != nil {
			t.Fatalf("bounced %s --help = %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	for _, c := range commandList() {
		if !strings.Contains(top, "\n  "+strings.TrimSpace(c.name+" "+c.synopsis)+"\n") {
			t.Errorf("the top-level help lacks %s's line", c.name)
		}
		if c.name == "help" {
			continue
		}
		own := helpOf(c.name)
		if !strings.HasPrefix(own, synopsis(c.name)) && c.name != "apikey" {
			t.Errorf("bounced %s --help does not start with its usage line:\n%s", c.name, own)
		}
		if c.name == "serve" || c.name == "check-config" {
			continue // their flags are the settings, checked against README's tables by TestReadmeNamesEverySetting
		}
		helps := []string{own}
		if c.name == "apikey" {
			helps = []string{helpOf("apikey", "create"), helpOf("apikey", "list"), helpOf("apikey", "revoke")}
		}
		for _, h := range helps {
			for _, f := range flagRE.FindAllStringSubmatch(h, -1) {
				flagName := "--" + f[1]
				if !strings.Contains(c.synopsis, flagName) && (c.name != "apikey" || !strings.Contains(own, flagName)) {
					t.Errorf("bounced %s --help lists %s, which its usage line does not", c.name, flagName)
				}
				if !bytes.Contains(readme, []byte(flagName)) {
					t.Errorf("README.md does not mention %s of bounced %s", flagName, c.name)
				}
			}
		}
		for _, f := range regexp.MustCompile(`--[a-z][a-z-]+`).FindAllString(c.synopsis, -1) {
			if !strings.Contains(strings.Join(helps, ""), "  -"+f[2:]+" ") && !strings.Contains(strings.Join(helps, ""), "  -"+f[2:]+"\n") {
				t.Errorf("bounced %s's usage line names %s, which its --help does not list", c.name, f)
			}
		}
	}
}

// TestHelp: help goes to standard output and exits 0 however it is asked
// for; a command's help is its own, not serve's settings.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "apikey"}, {"apikey", "--help"}, {"apikey", "create", "--help"},
		{"serve", "--help"}, {"version", "--help"}, {"ingest", "maildir", "--help"}, {"parse", "-h"}, {"import", "--help"},
		{"stats", "-h"}, {"explain", "--help"}, {"healthcheck", "--help"}, {"migrate", "--help"}, {"check-config", "--help"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, env(), nil, &out, &errOut)
		got := out.String()
		switch {
		case err != nil:
			t.Errorf("bounced %s = %v, want success", strings.Join(args, " "), err)
		case !strings.HasPrefix(got, "usage: bounced"):
			t.Errorf("bounced %s printed %q, want a usage", strings.Join(args, " "), got)
		case args[0] != "serve" && args[0] != "check-config" && strings.Contains(got, "-webhook-ses-topic-arns"):
			t.Errorf("bounced %s lists serve's settings:\n%s", strings.Join(args, " "), got)
		case len(args) <= 1 || args[0] == "help" && len(args) == 1:
			if !strings.Contains(got, "  apikey create|list|revoke") {
				t.Errorf("bounced %s does not list the commands:\n%s", strings.Join(args, " "), got)
			}
		}
		if errOut.Len() > 0 {
			t.Errorf("bounced %s wrote to standard error: %s", strings.Join(args, " "), errOut.String())
		}
	}
	if got := helpText(t, "apikey", "create", "--help"); !strings.Contains(got, "  -name string") || strings.Count(got, "\n") > 40 {
		t.Errorf("apikey create --help is not create's own help:\n%s", got)
	}
	var ue usageError
	for _, args := range [][]string{{"apikey"}, {"help", "bogus"}, {"version", "extra"}, {"stats", "--bogus"}, {"bogus"}} {
		if err := run(context.Background(), args, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("bounced %s = %v, want a usage error (exit 2)", strings.Join(args, " "), err)
		}
	}
}

func helpText(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, env(), nil, &out, io.Discard); err != nil {
		t.Fatalf("bounced %s = %v", strings.Join(args, " "), err)
	}
	return out.String()
}

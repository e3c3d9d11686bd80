package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest/webhook"
)

// deployEnv is the environment one of deploy/'s setups gives bounced, and
// where it expects its secret files.
type deployEnv struct {
	vars map[string]string
	// secrets maps each *_FILE variable to the secret it names:
	// database-url or admin-key.
	secrets map[string]string
}

// kubernetesEnv reads the ConfigMap and the container's env.
func kubernetesEnv(t *testing.T) deployEnv {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "../../deploy/kubernetes/configmap.yaml", &cm)
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Env []struct{ Name, Value string } `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	readYAML(t, "../../deploy/kubernetes/deployment.yaml", &dep)
	e := deployEnv{vars: map[string]string{}, secrets: map[string]string{}}
	for k, v := range cm.Data {
		e.vars[k] = v
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, v := range c.Env {
			e.vars[v.Name] = v.Value
		}
	}
	e.secrets["BOUNCED_DATABASE_URL_FILE"] = "database-url"
	e.secrets["BOUNCED_ADMIN_KEY_FILE"] = "admin-api-key"
	return e
}

// dockerEnv reads the image's ENV, plus the secret files its comment
// tells docker run to pass.
func dockerEnv(t *testing.T) deployEnv {
	t.Helper()
	b, err := os.ReadFile("../../deploy/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(string(b), "\\\n", " ")
	e := deployEnv{vars: map[string]string{}, secrets: map[string]string{}}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.*)$`).FindAllStringSubmatch(src, -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			e.vars[k] = v
		}
	}
	for _, m := range regexp.MustCompile(`-e (BOUNCED_\w+_FILE)=/run/secrets/(\w+)`).FindAllStringSubmatch(src, -1) {
		e.vars[m[1]] = "/run/secrets/" + m[2]
		e.secrets[m[1]] = m[2]
	}
	return e
}

// systemdEnv reads the unit's Environment= lines; %d is the credentials
// directory systemd fills from LoadCredential=.
func systemdEnv(t *testing.T, uncomment bool) deployEnv {
	t.Helper()
	b, err := os.ReadFile("../../deploy/systemd/bounced.service")
	if err != nil {
		t.Fatal(err)
	}
	e := deployEnv{vars: map[string]string{}, secrets: map[string]string{}}
	pattern := `(?m)^Environment=(.*)$`
	if uncomment {
		pattern = `(?m)^#? ?Environment=(.*)$`
	}
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(string(b), -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			e.vars[k] = v
			if cred, ok := strings.CutPrefix(v, "%d/"); ok {
				e.secrets[k] = cred
			}
		}
	}
	return e
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// knownSettings lists every BOUNCED_* variable bounced reads (with the
// _FILE form of secrets).
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	cfg, err := config.Load(nil, env("BOUNCED_DATABASE_URL", "postgres://x/y", "BOUNCED_ADMIN_KEY", strings.Repeat("k", 32)), io.Discard, webhook.Settings()...)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for line := range strings.Lines(cfg.String()) {
		name, value, _ := strings.Cut(line, "=")
		known[name] = true
		if strings.TrimSpace(value) == "********" {
			known[name+"_FILE"] = true
		}
	}
	return known
}

// TestDeployEnvironmentsStartBounced starts bounced with the environment
// each setup in deploy/ gives it, secrets in files where the setup puts
// them and the port moved to a free one: it serves, /readyz is green, the
// API wants the admin key, and the container HEALTHCHECK passes. Without
// the admin key the setups listening on all interfaces must refuse to
// start.
func TestDeployEnvironmentsStartBounced(t *testing.T) {
	t.Parallel()
	known := knownSettings(t)
	for _, tc := range []struct {
		name      string
		env       func(*testing.T) deployEnv
		allHosts  bool // listens beyond loopback
		hasSecret []string
	}{
		{"kubernetes", kubernetesEnv, true, []string{"database-url", "admin-api-key"}},
		{"docker", dockerEnv, true, []string{"db", "admin"}},
		{"systemd", func(t *testing.T) deployEnv { return systemdEnv(t, false) }, false, []string{"database-url"}},
		{"systemd with its commented lines", func(t *testing.T) deployEnv { return systemdEnv(t, true) }, true, []string{"database-url", "admin-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			de := tc.env(t)
			for k := range de.vars {
				if !known[k] {
					t.Errorf("%s sets %s, which bounced does not read", tc.name, k)
				}
			}
			for _, want := range tc.hasSecret {
				if !strings.Contains(strings.Join(mapValues(de.secrets), " "), want) {
					t.Errorf("%s passes no %s secret", tc.name, want)
				}
			}
			host, _, err := net.SplitHostPort(de.vars["BOUNCED_LISTEN"])
			if err != nil {
				t.Fatalf("BOUNCED_LISTEN %q: %v", de.vars["BOUNCED_LISTEN"], err)
			}
			if allHosts := !loopback(de.vars["BOUNCED_LISTEN"]); allHosts != tc.allHosts {
				t.Fatalf("BOUNCED_LISTEN %q: all hosts %v, want %v", de.vars["BOUNCED_LISTEN"], allHosts, tc.allHosts)
			}
			_, port, _ := net.SplitHostPort(freePort(t))
			de.vars["BOUNCED_LISTEN"] = net.JoinHostPort(host, port)
			// The mail receivers, where the setup has them, move too.
			receivers := map[string]string{} // network: address
			if l := de.vars["BOUNCED_SMTP_LISTEN"]; l != "" {
				de.vars["BOUNCED_SMTP_LISTEN"] = freePort(t)
				receivers["tcp"] = de.vars["BOUNCED_SMTP_LISTEN"]
			}
			if s := de.vars["BOUNCED_LMTP_SOCKET"]; s != "" {
				de.vars["BOUNCED_LMTP_SOCKET"] = filepath.Join(t.TempDir(), "lmtp.sock")
				receivers["unix"] = de.vars["BOUNCED_LMTP_SOCKET"]
			}
			dir := t.TempDir()
			admin := "deploy-admin-token-0123456789abcdef"
			for variable, secret := range de.secrets {
				value := dbtest.URL(t)
				if strings.Contains(secret, "admin") {
					value = admin
				}
				file := filepath.Join(dir, secret)
				if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				de.vars[variable] = file
			}
			getenv := func(k string) string { return de.vars[k] }
			_, stop := startServeAs(t, getenv, io.Discard)
			base := "http://" + net.JoinHostPort("127.0.0.1", port)
			// On loopback with no key the API is open (404: not suppressed).
			keyed := map[bool]int{true: 401, false: 404}[tc.allHosts]
			for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/suppressions/a@example.com": keyed} {
				if code := getStatus(t, base+path); code != want {
					t.Errorf("GET %s = %d, want %d", path, code, want)
				}
			}
			if tc.allHosts {
				req, _ := http.NewRequest(http.MethodGet, base+"/v1/suppressions/a@example.com", nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 404 {
					t.Errorf("GET with the admin key = %d, want 404 (not suppressed)", resp.StatusCode)
				}
			}
			for network, addr := range receivers {
				conn, err := net.DialTimeout(network, addr, 5*time.Second)
				if err != nil {
					t.Errorf("the %s's %s receiver: %v", tc.name, network, err)
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				greeting, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if !strings.HasPrefix(greeting, "220 ") {
					t.Errorf("the %s's %s receiver greets %q (%v), want 220", tc.name, network, greeting, err)
				}
			}
			var out bytes.Buffer
			if err := run(context.Background(), []string{"healthcheck"}, getenv, nil, &out, io.Discard); err != nil || out.String() != "ok\n" {
				t.Errorf("bounced healthcheck with the %s environment = %v, %q", tc.name, err, out.String())
			}
			if err := stop(); err != nil {
				t.Errorf("serve: %v", err)
			}
			if !tc.allHosts {
				return
			}
			delete(de.vars, "BOUNCED_ADMIN_KEY_FILE")
			err = run(context.Background(), []string{"serve"}, getenv, nil, io.Discard, io.Discard)
			if !errors.Is(err, ErrOpenExposed) {
				t.Errorf("serve on %s without the admin key = %v, want ErrOpenExposed", de.vars["BOUNCED_LISTEN"], err)
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Package deploy holds the tests of the deployment files. It is a module
// of its own so the Kubernetes API types and the Dockerfile parser stay
// out of bounced's dependencies; `make test` runs it.
package deploy

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the objects of deploy/kubernetes, decoded strictly: an
// unknown or misspelt field, a duplicate key or a wrong type fails.
type manifests struct {
	namespace  *corev1.Namespace
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
	service    *corev1.Service // the API's
	smtp       *corev1.Service // the receiver's, for the bounce domain's MX
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	monitor    *monitoringv1.ServiceMonitor
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []image  `json:"images"`
}

type image struct {
	Name   string `json:"name"`
	NewTag string `json:"newTag"`
}

func readKubernetes(t *testing.T) (kustomization, manifests) {
	t.Helper()
	var k kustomization
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var m manifests
	listed := map[string]bool{}
	for _, file := range k.Resources {
		listed[file] = true
		b, err := os.ReadFile(filepath.Join("kubernetes", file))
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", file, err)
		}
		decodeManifests(t, file, string(b), &m)
	}
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !listed[base] {
			t.Errorf("%s is not listed in kustomization.yaml", base)
		}
	}
	return k, m
}

// decodeManifests decodes the YAML documents of src strictly into m.
func decodeManifests(t *testing.T, file, src string, m *manifests) {
	t.Helper()
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(src, -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			m.namespace = &corev1.Namespace{}
			obj = m.namespace
		case "v1 ConfigMap":
			m.configMap = &corev1.ConfigMap{}
			obj = m.configMap
		case "apps/v1 Deployment":
			m.deployment = &appsv1.Deployment{}
			obj = m.deployment
		case "v1 Service":
			svc := &corev1.Service{}
			if regexp.MustCompile(`(?m)^  name: \S*-?smtp$`).MatchString(doc) {
				m.smtp = svc
			} else {
				m.service = svc
			}
			obj = svc
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			obj = m.pdb
		case "autoscaling/v2 HorizontalPodAutoscaler":
			m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			obj = m.hpa
		case "monitoring.coreos.com/v1 ServiceMonitor":
			m.monitor = &monitoringv1.ServiceMonitor{}
			obj = m.monitor
		default:
			t.Fatalf("%s: unexpected %s %s", file, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("%s: %s does not decode strictly: %v", file, tm.Kind, err)
		}
	}
}

// TestKubernetesManifests decodes every manifest into the Kubernetes API
// types and checks that the objects fit together: selectors select the
// pods, probes and ports agree, secrets reach the container, and the
// container runs unprivileged.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	k, m := readKubernetes(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace == "" {
		t.Errorf("kustomization.yaml: %s %s namespace %q", k.APIVersion, k.Kind, k.Namespace)
	}
	for name, missing := range map[string]bool{"Namespace": m.namespace == nil, "ConfigMap": m.configMap == nil,
		"Deployment": m.deployment == nil, "Service": m.service == nil, "SMTP Service": m.smtp == nil, "PodDisruptionBudget": m.pdb == nil,
		"HorizontalPodAutoscaler": m.hpa == nil, "ServiceMonitor": m.monitor == nil} {
		if missing {
			t.Fatalf("no %s in the manifests", name)
		}
	}
	if m.namespace.Name != k.Namespace {
		t.Errorf("namespace.yaml makes %q, kustomization.yaml deploys into %q", m.namespace.Name, k.Namespace)
	}
	c := m.deployment.Spec.Template.Spec.Containers[0]
	if !slices.ContainsFunc(k.Images, func(i image) bool { return strings.HasPrefix(c.Image, i.Name+":") && i.NewTag != "" }) {
		t.Errorf("image %s has no images: entry (tag) in kustomization.yaml", c.Image)
	}
	for _, key := range []string{"database-url", "admin-api-key"} {
		if !strings.Contains(readFile(t, "kubernetes/deployment.yaml"), "--from-literal="+key+"=") {
			t.Errorf("deployment.yaml's comment does not say how to create the Secret key %s", key)
		}
	}
	checkManifests(t, m, "bounced")
}

// checkManifests checks that the objects fit together: selectors select
// the pods, probes and ports agree, secrets (of the Secret named secret)
// reach the container, the container runs unprivileged, and the
// autoscaler, disruption budget, monitor and SMTP Service (where there
// are) agree with them.
func checkManifests(t *testing.T, m manifests, secret string) {
	t.Helper()
	d := m.deployment
	pod := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(pod) {
		t.Errorf("the Deployment's selector %v does not select its pods %v (%v)", d.Spec.Selector, pod, err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want bounced alone", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8025 {
		t.Errorf("container ports %v, want http 8025", ports)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %+v, want GET %s on port http", name, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")

	// Settings: the ConfigMap by envFrom, secrets as files from the Secret.
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != m.configMap.Name {
		t.Errorf("envFrom = %+v, want the ConfigMap %s", c.EnvFrom, m.configMap.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	var dir string // where the Secret is mounted
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secret {
			continue
		}
		for _, vm := range c.VolumeMounts {
			if vm.Name == v.Name {
				dir = vm.MountPath
			}
		}
	}
	if dir == "" {
		t.Fatalf("the Secret %s is not mounted in the container", secret)
	}
	for variable, key := range map[string]string{"BOUNCED_DATABASE_URL_FILE": "database-url", "BOUNCED_ADMIN_KEY_FILE": "admin-api-key"} {
		if env[variable] != dir+"/"+key {
			t.Errorf("%s = %q, want the Secret's %s key at %s/%s", variable, env[variable], key, dir, key)
		}
	}
	if listen := m.configMap.Data["BOUNCED_LISTEN"]; !strings.HasPrefix(listen, "0.0.0.0:") || env["BOUNCED_ADMIN_KEY_FILE"] == "" {
		t.Errorf("BOUNCED_LISTEN %q: the Service needs all interfaces, and then an admin key", listen)
	}
	for key := range m.configMap.Data {
		if !strings.HasPrefix(key, "BOUNCED_") {
			t.Errorf("ConfigMap key %s is not a bounced setting", key)
		}
	}

	// Unprivileged and read-only.
	psc, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0:
		t.Error("the pod may run as root")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation is allowed")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Error("capabilities are not dropped")
	case d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken:
		t.Error("the service account token is mounted; bounced never calls the Kubernetes API")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("CPU and memory requests and a memory limit are needed (the HPA scales on CPU requests)")
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || !strings.HasSuffix(m.configMap.Data["BOUNCED_SHUTDOWN_TIMEOUT"], "s") {
		t.Error("no termination grace period or BOUNCED_SHUTDOWN_TIMEOUT in seconds")
	} else if shutdown := strings.TrimSuffix(m.configMap.Data["BOUNCED_SHUTDOWN_TIMEOUT"], "s"); len(shutdown) == 0 || atoi(t, shutdown) >= int(*grace) {
		t.Errorf("BOUNCED_SHUTDOWN_TIMEOUT %ss is not below the grace period %ds: requests would be cut", shutdown, *grace)
	}

	// The Service, PDB and ServiceMonitor select these pods; the HPA
	// scales this Deployment.
	if !labels.SelectorFromSet(m.service.Spec.Selector).Matches(pod) || len(m.service.Spec.Selector) == 0 {
		t.Errorf("the Service selector %v does not select the pods", m.service.Spec.Selector)
	}
	svcPorts := map[string]bool{}
	for _, p := range m.service.Spec.Ports {
		svcPorts[p.Name] = true
		if p.TargetPort.Type == intstr.String && ports[p.TargetPort.StrVal] == 0 {
			t.Errorf("Service port %s targets %q, which the container does not name", p.Name, p.TargetPort.StrVal)
		}
	}
	if m.pdb != nil {
		if sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector); err != nil || !sel.Matches(pod) {
			t.Errorf("the PodDisruptionBudget does not select the pods (%v)", err)
		}
	}
	if m.hpa != nil {
		ref := m.hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("the HPA scales %+v, not the Deployment %s", ref, d.Name)
		}
		if m.pdb != nil && (m.hpa.Spec.MinReplicas == nil || m.pdb.Spec.MinAvailable == nil || int(*m.hpa.Spec.MinReplicas) <= m.pdb.Spec.MinAvailable.IntValue()) {
			t.Error("the HPA's minReplicas must exceed the PDB's minAvailable, or no node can ever be drained")
		}
		if conns := atoi(t, m.configMap.Data["BOUNCED_DB_MAX_CONNS"]); conns*int(m.hpa.Spec.MaxReplicas) > 90 {
			t.Errorf("%d replicas x %d connections exceed what a default PostgreSQL (max_connections 100) allows", m.hpa.Spec.MaxReplicas, conns)
		}
	}
	if m.monitor != nil {
		sel, err := metav1.LabelSelectorAsSelector(&m.monitor.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(m.service.Labels)) || m.smtp != nil && sel.Matches(labels.Set(m.smtp.Labels)) {
			t.Errorf("the ServiceMonitor does not select the API's Service alone (%v)", err)
		}
		for _, ep := range m.monitor.Spec.Endpoints {
			if !svcPorts[ep.Port] || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %+v: want a Service port name and /metrics", ep)
			}
		}
	}
	if m.smtp != nil || m.configMap.Data["BOUNCED_SMTP_LISTEN"] != "" {
		if m.smtp == nil {
			t.Fatal("BOUNCED_SMTP_LISTEN is set, but no Service offers the receiver")
		}
		checkSMTP(t, m, ports)
	}
}

// checkSMTP: the receiver listens in the pod on the port the container
// names smtp, unprivileged, and the SMTP Service offers it on 25 to the
// same pods.
func checkSMTP(t *testing.T, m manifests, ports map[string]int32) {
	t.Helper()
	listen := m.configMap.Data["BOUNCED_SMTP_LISTEN"]
	_, port, err := net.SplitHostPort(listen)
	switch {
	case err != nil:
		t.Errorf("BOUNCED_SMTP_LISTEN %q: %v", listen, err)
	case ports["smtp"] == 0 || strconv.Itoa(int(ports["smtp"])) != port:
		t.Errorf("BOUNCED_SMTP_LISTEN %q, but the container's smtp port is %d", listen, ports["smtp"])
	case ports["smtp"] < 1024:
		t.Errorf("the pod runs unprivileged, so it cannot listen on port %d", ports["smtp"])
	case m.configMap.Data["BOUNCED_SMTP_DOMAINS"] == "":
		t.Error("BOUNCED_SMTP_LISTEN without BOUNCED_SMTP_DOMAINS: bounced would accept no recipient")
	}
	pod := labels.Set(m.deployment.Spec.Template.Labels)
	if !labels.SelectorFromSet(m.smtp.Spec.Selector).Matches(pod) || len(m.smtp.Spec.Selector) == 0 {
		t.Errorf("the SMTP Service selector %v does not select the pods", m.smtp.Spec.Selector)
	}
	if len(m.smtp.Spec.Ports) != 1 || m.smtp.Spec.Ports[0].Port != 25 || m.smtp.Spec.Ports[0].TargetPort != intstr.FromString("smtp") {
		t.Errorf("SMTP Service ports %+v, want 25 to the container's smtp port", m.smtp.Spec.Ports)
	}
}

// TestDockerfile parses deploy/docker/Dockerfile with BuildKit's parser and
// linter (what `docker build --check` runs) and checks its shape: a Go
// build stage making a static, reproducible binary, and a distroless or
// scratch stage that runs it as a non-root user with a health check.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	src := readFile(t, "docker/Dockerfile")
	res, err := parser.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile lint %s: %s (line %v)", rule, msg, loc)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	goMod := readFile(t, "../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if goVersion == nil || !strings.HasPrefix(build.BaseName, "golang:"+goVersion[1]) {
		t.Errorf("build stage FROM %s, want golang:%s (go.mod's Go)", build.BaseName, goVersion)
	}
	var buildCmd string
	for _, cmd := range build.Commands {
		if run, ok := cmd.(*instructions.RunCommand); ok && strings.Contains(strings.Join(run.CmdLine, " "), "go build") {
			buildCmd = strings.Join(run.CmdLine, " ")
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "./cmd/bounced", "main.version=", "main.commit="} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("the go build step %q lacks %s", buildCmd, want)
		}
	}

	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") && final.BaseName != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless static or scratch", final.BaseName)
	}
	var user, entrypoint, health string
	var copied, listens bool
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = strings.Join(c.CmdLine, " ")
		case *instructions.HealthCheckCommand:
			health = strings.Join(c.Health.Test, " ")
		case *instructions.CopyCommand:
			copied = copied || c.From == build.Name
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				listens = listens || kv.Key == "BOUNCED_LISTEN" && strings.HasPrefix(kv.Value, "0.0.0.0:")
			}
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "root" || uid == "0" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !copied {
		t.Errorf("the runtime stage copies nothing from the build stage %q", build.Name)
	}
	if !strings.HasSuffix(entrypoint, "/bounced") {
		t.Errorf("ENTRYPOINT %q is not the bounced binary", entrypoint)
	}
	if !strings.HasPrefix(health, "CMD ") || !strings.Contains(health, "bounced healthcheck") {
		t.Errorf("HEALTHCHECK %q, want CMD bounced healthcheck (the image has no shell or curl)", health)
	}
	if !listens || !strings.Contains(src, "BOUNCED_ADMIN_KEY") {
		t.Error("the image listens on 0.0.0.0 and its comment must say that it needs BOUNCED_ADMIN_KEY(_FILE) or API keys")
	}
	// The build context never takes the private PostgreSQL's data along.
	if ignore := readFile(t, "docker/Dockerfile.dockerignore"); !regexp.MustCompile(`(?m)^\.bounced$`).MatchString(ignore) {
		t.Error("Dockerfile.dockerignore does not leave out .bounced")
	}
	// make reproducible builds with the very same flags.
	ldflags := regexp.MustCompile(`-ldflags "([^"]+)"`).FindStringSubmatch(buildCmd)
	mk := regexp.MustCompile(`(?m)^REPRO_BUILD := (.*)$`).FindStringSubmatch(readFile(t, "../Makefile"))
	if ldflags == nil || mk == nil {
		t.Fatal("no -ldflags in the Dockerfile's build step, or no REPRO_BUILD in the Makefile")
	}
	want := "CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '" +
		strings.NewReplacer("${VERSION}", "$(VERSION)", "${COMMIT}", "$(COMMIT)").Replace(ldflags[1]) + "'"
	if mk[1] != want {
		t.Errorf("Makefile REPRO_BUILD = %s\nwant (the Dockerfile's) %s", mk[1], want)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSystemdUnit checks deploy/systemd/bounced.service offline: systemd
// loads it without a warning (the binary built into a scratch root where
// the unit says), and its sandboxing keeps the exposure score low.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (Debian: apt-get install systemd): %v", err)
	}
	unit := readFile(t, "systemd/bounced.service")
	for _, want := range []string{"BOUNCED_DATABASE_URL_FILE=%d/", "LoadCredential=database-url:", "BOUNCED_LISTEN=127.0.0.1:", "BOUNCED_ADMIN_KEY_FILE",
		"BOUNCED_LMTP_SOCKET=/run/bounced/", "RuntimeDirectory=bounced", "BOUNCED_SMTP_LISTEN=0.0.0.0:25", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	// As shipped, and with every commented directive turned on (the
	// admin key beyond loopback, LMTP and SMTP on port 25).
	full := regexp.MustCompile(`(?m)^# ?([A-Z][A-Za-z]*=)`).ReplaceAllString(unit, "$1")
	if strings.Count(full, "\nEnvironment=") < strings.Count(unit, "\nEnvironment=")+3 {
		t.Fatalf("uncommenting found too few directives:\n%s", full)
	}
	for name, u := range map[string]string{"as shipped": unit, "every line on": full} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkUnit(t, analyze, u)
		})
	}
}

// checkUnit: systemd loads the unit without a warning, and its exposure
// score stays low.
func checkUnit(t *testing.T, analyze, unit string) {
	t.Helper()
	root := t.TempDir()
	exe := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindStringSubmatch(unit)
	if exe == nil {
		t.Fatal("no ExecStart")
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, exe[1]), "./cmd/bounced")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// systemd's own units (sysinit.target and the rest the unit pulls in).
	systemUnits := "/usr/lib/systemd/system"
	if err := os.CopyFS(filepath.Join(root, systemUnits), os.DirFS(systemUnits)); err != nil {
		t.Fatalf("copy %s: %v", systemUnits, err)
	}
	unitDir := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unitDir, "bounced.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--root="+root, "bounced.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--root="+root, "--threshold=20", "bounced.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for bounced\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0 (it was 1.4)\n%s", level, out)
	} else {
		t.Logf("systemd exposure level %.1f", level)
	}
}

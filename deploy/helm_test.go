package deploy

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
)

const chartDir = "helm/bounced"

// renderChart renders the chart as `helm template` does, for a release
// "bounced" in the namespace "bounced", with values over the chart's.
func renderChart(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{Name: "bounced", Namespace: "bounced", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	return engine.Render(chrt, vals)
}

// TestHelmChart lints deploy/helm/bounced with Helm's own linter (what
// `helm lint` runs) and renders it (as `helm template` does) with the
// defaults and with every optional part on: each rendering decodes
// strictly into the Kubernetes API types and passes the checks the
// kustomize manifests pass. Values that cannot work fail to render,
// saying why.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	all := map[string]any{
		"smtp":           map[string]any{"enabled": true, "domains": "bounce.example.net"},
		"serviceMonitor": map[string]any{"enabled": true},
	}
	for name, values := range map[string]map[string]any{
		"defaults":       nil,
		"every part on":  all,
		"no autoscaling": {"autoscaling": map[string]any{"enabled": false}, "podDisruptionBudget": map[string]any{"enabled": false}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			linted := lint.RunAll(chartDir, values, "bounced")
			for _, msg := range linted.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("helm lint: %v", msg)
				} else {
					t.Logf("helm lint: %v", msg)
				}
			}
			out, err := renderChart(t, values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			var m manifests
			var files []string
			for file := range out {
				files = append(files, file)
			}
			sort.Strings(files)
			for _, file := range files {
				if strings.HasSuffix(file, ".yaml") {
					decodeManifests(t, file, out[file], &m)
				}
			}
			if m.configMap == nil || m.deployment == nil || m.service == nil {
				t.Fatalf("rendered %v: no ConfigMap, Deployment or Service", files)
			}
			checkManifests(t, m, "bounced")
			want := map[string]bool{"smtp": values["smtp"] != nil, "monitor": values["serviceMonitor"] != nil,
				"hpa": values["autoscaling"] == nil, "pdb": values["podDisruptionBudget"] == nil}
			got := map[string]bool{"smtp": m.smtp != nil, "monitor": m.monitor != nil, "hpa": m.hpa != nil, "pdb": m.pdb != nil}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rendered parts %v, want %v", got, want)
			}
			if m.hpa == nil && (m.deployment.Spec.Replicas == nil || *m.deployment.Spec.Replicas < 1) {
				t.Error("without autoscaling the Deployment names no replicas")
			}
			if m.hpa != nil && m.deployment.Spec.Replicas != nil {
				t.Error("with autoscaling the Deployment must not set replicas (each upgrade would reset the HPA's count)")
			}
			if notes := out["bounced/templates/NOTES.txt"]; !strings.Contains(notes, "admin-api-key") {
				t.Errorf("NOTES.txt does not say where the admin token is:\n%s", notes)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		says   string
	}{
		{"smtp without a domain", map[string]any{"smtp": map[string]any{"enabled": true}}, "smtp.domains"},
		{"privileged smtp port", map[string]any{"smtp": map[string]any{"enabled": true, "domains": "b.example", "containerPort": 25}}, "1024"},
		{"shutdown beyond the grace period", map[string]any{"shutdownTimeout": "60s"}, "terminationGracePeriodSeconds"},
		{"not a setting", map[string]any{"settings": map[string]any{"LISTEN": "x"}}, "not a BOUNCED_"},
		{"a setting the chart owns", map[string]any{"settings": map[string]any{"BOUNCED_LISTEN": "127.0.0.1:1"}}, "chart's own values"},
		{"no secret", map[string]any{"existingSecret": ""}, "existingSecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := renderChart(t, tc.values); err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("render = %v, want an error naming %s", err, tc.says)
			}
		})
	}
}

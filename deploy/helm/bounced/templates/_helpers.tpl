{{/* The name of every object: the release's, with the chart's name once. */}}
{{- define "bounced.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods. */}}
{{- define "bounced.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "bounced.labels" -}}
{{ include "bounced.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Checks the values before anything is made. */}}
{{- define "bounced.validate" -}}
{{- if and .Values.smtp.enabled (not .Values.smtp.domains) -}}
{{- fail "smtp.enabled needs smtp.domains: the bounce domain(s) whose mail bounced accepts" -}}
{{- end -}}
{{- if lt (int .Values.smtp.containerPort) 1024 -}}
{{- fail "smtp.containerPort must be 1024 or above: the pod runs unprivileged (the Service offers smtp.service.port)" -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+s$" .Values.shutdownTimeout) -}}
{{- fail "shutdownTimeout is a number of seconds such as 25s" -}}
{{- end -}}
{{- if ge (int (trimSuffix "s" .Values.shutdownTimeout)) (int .Values.terminationGracePeriodSeconds) -}}
{{- fail "shutdownTimeout must be below terminationGracePeriodSeconds, or requests are cut" -}}
{{- end -}}
{{- if not .Values.existingSecret -}}
{{- fail "existingSecret names the Secret with database-url and admin-api-key" -}}
{{- end -}}
{{- range $k, $v := .Values.settings -}}
{{- if not (hasPrefix "BOUNCED_" $k) -}}
{{- fail (printf "settings.%s is not a BOUNCED_* setting" $k) -}}
{{- end -}}
{{- if has $k (list "BOUNCED_LISTEN" "BOUNCED_SHUTDOWN_TIMEOUT" "BOUNCED_SMTP_LISTEN" "BOUNCED_SMTP_DOMAINS" "BOUNCED_DATABASE_URL" "BOUNCED_ADMIN_KEY") -}}
{{- fail (printf "settings.%s comes from the chart's own values or the Secret; set those instead" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

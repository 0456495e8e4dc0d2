{{/*
bgplb's namespace is fixed in the binary (v1alpha1.InstallNamespace): its
BGP password Secrets and its Lease live there. Refuse any other.
*/}}
{{- define "bgplb.namespace" -}}
{{- if ne .Release.Namespace "bgplb-system" -}}
{{- fail (printf "bgplb must be installed in the namespace bgplb-system (it looks for its Secrets and Lease there), not %q: add --namespace bgplb-system" .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end }}

{{/*
Helm's labels, on every object's metadata (not on selectors or pod
templates, which stay as in config/default so the two installs match).
*/}}
{{- define "bgplb.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end }}

{{/*
metadata.labels of an object: Helm's, the component's (a dict, may be
empty), part-of, and commonLabels. Call with (dict "root" $ "labels" (dict ...)).
*/}}
{{- define "bgplb.labels" -}}
{{- $l := merge (dict) (.labels | default dict) (dict "app.kubernetes.io/part-of" "bgplb") -}}
{{- $l = merge $l (.root.Values.commonLabels | default dict) -}}
{{ include "bgplb.helmLabels" .root }}
{{ toYaml $l }}
{{- end }}

{{/* Selector labels of a component: "controller" or "speaker". */}}
{{- define "bgplb.selectorLabels" -}}
app.kubernetes.io/name: bgplb
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/*
metadata.labels and, with commonAnnotations, metadata.annotations of an
object. Same argument as bgplb.labels.
*/}}
{{- define "bgplb.metadata" -}}
labels:
  {{- include "bgplb.labels" . | nindent 2 }}
{{- with .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The image of both workloads. */}}
{{- define "bgplb.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Flags both subcommands take from values. */}}
{{- define "bgplb.commonArgs" -}}
- --zap-encoder={{ .Values.log.format }}
{{- with .Values.log.level }}
- --zap-log-level={{ . }}
{{- end }}
{{- if not .Values.defaultClass }}
- --default-class=false
{{- end }}
{{- end }}

{{/* The labels every object carries: the manifests' two, then extraLabels. */}}
{{- define "libinject.labels" -}}
app.kubernetes.io/name: libinject
app.kubernetes.io/component: operator
{{- with .Values.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* What selects the operator's pods (never extraLabels: a selector cannot change). */}}
{{- define "libinject.selector" -}}
app.kubernetes.io/name: libinject
app.kubernetes.io/component: operator
{{- end -}}

{{/* The operator image: by digest when one is given. */}}
{{- define "libinject.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The namespaces the API server never sends us: the system ones, ours, the CSI plugin's and
     the excluded ones. */}}
{{- define "libinject.neverSent" -}}
{{- $names := list "kube-system" "kube-public" "kube-node-lease" .Values.namespace "libinject-csi" -}}
{{- range .Values.settings.excludedNamespaces }}{{ if not (has . $names) }}{{ $names = append $names . }}{{ end }}{{ end -}}
{{- toJson $names -}}
{{- end -}}

{{/* A labels block for the objects the manifests leave unlabelled: only extraLabels, if any. */}}
{{- define "libinject.extraLabels" -}}
{{- with .Values.extraLabels }}
labels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

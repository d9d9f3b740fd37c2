{{/* Labels of every object. */}}
{{- define "guardian.labels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pods' selector labels. */}}
{{- define "guardian.selector" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The runtime directories runtimeSockets turns on: the node's path, and where the
     config's [containers] paths expect it in the container. */}}
{{- define "guardian.runtimeDirs" -}}
containerd: {host: /run/containerd, mount: /run/containerd}
crio: {host: /run/crio, mount: /run/crio}
podman: {host: /run/podman, mount: /run/podman}
containers: {host: /run/containers, mount: /run/containers}
dockerState: {host: /run/docker, mount: /var/run/docker}
{{- end -}}

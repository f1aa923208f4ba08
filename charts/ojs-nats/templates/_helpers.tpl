{{/*
Names. fullname is <release>-ojs-nats, or the release name alone when it already contains
"ojs-nats"; every object name is fullname plus a component suffix.
*/}}
{{- define "ojs-nats.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ojs-nats.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ojs-nats.gateway.fullname" -}}
{{- printf "%s-gateway" (include "ojs-nats.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ojs-nats.operator.fullname" -}}
{{- printf "%s-operator" (include "ojs-nats.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The NATS StatefulSet; also the name of the client Service and the cluster name. */}}
{{- define "ojs-nats.nats.fullname" -}}
{{- printf "%s-nats" (include "ojs-nats.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ojs-nats.nats.headless" -}}
{{- printf "%s-headless" (include "ojs-nats.nats.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ojs-nats.nats.pvcName" -}}
{{- .Values.nats.config.jetstream.fileStore.pvc.name | default (printf "%s-js" (include "ojs-nats.nats.fullname" .)) }}
{{- end }}

{{- define "ojs-nats.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Call with (dict "ctx" $ "component" "gateway"). Selector labels never include the
version, so an upgrade does not orphan the old pods.
*/}}
{{- define "ojs-nats.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ojs-nats.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ojs-nats.labels" -}}
{{ include "ojs-nats.selectorLabels" . }}
app.kubernetes.io/part-of: ojs-nats
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ include "ojs-nats.chart" .ctx }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* image: <repository>:<tag> for a component; call with (dict "ctx" $ "image" .Values.gateway.image). */}}
{{- define "ojs-nats.image" -}}
{{- $repo := .image.repository | default .ctx.Values.image.repository }}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "ojs-nats.pullPolicy" -}}
{{- .image.pullPolicy | default .ctx.Values.image.pullPolicy }}
{{- end }}

{{- define "ojs-nats.serviceAccountName" -}}
{{- if .sa.create }}
{{- .sa.name | default .default }}
{{- else }}
{{- .sa.name | default "default" }}
{{- end }}
{{- end }}

{{/* Whether this chart runs a multi-node NATS cluster. */}}
{{- define "ojs-nats.nats.clustered" -}}
{{- if and .Values.nats.enabled .Values.nats.config.cluster.enabled }}true{{ end }}
{{- end }}

{{- define "ojs-nats.nats.replicas" -}}
{{- if include "ojs-nats.nats.clustered" . }}
{{- $n := int .Values.nats.config.cluster.replicas }}
{{- if lt $n 3 }}
{{- fail "nats.config.cluster.replicas must be at least 3: JetStream needs a majority of 3 to keep replicated streams writable when a node is down" }}
{{- end }}
{{- $n }}
{{- else }}1{{- end }}
{{- end }}

{{/* In-cluster DNS suffix, e.g. ns.svc.cluster.local. */}}
{{- define "ojs-nats.svcDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.nats.config.cluster.routeURLs.k8sClusterDomain }}
{{- end }}

{{/*
NATS_URL of the gateway and direct workers: explicit, or the chart's client Service. One Service URL is enough:
the client learns the other nodes from the server (connect_urls) and reconnects to them.
*/}}
{{- define "ojs-nats.natsUrl" -}}
{{- if .Values.gateway.config.natsUrl }}
{{- .Values.gateway.config.natsUrl }}
{{- else if .Values.nats.enabled }}
{{- printf "nats://%s.%s:%d" (include "ojs-nats.nats.fullname" .) (include "ojs-nats.svcDomain" .) (int .Values.nats.config.nats.port) }}
{{- else }}
{{- fail "gateway.config.natsUrl is required when nats.enabled is false" }}
{{- end }}
{{- end }}

{{/* OJS_REPLICAS: explicit, else 3 on the chart's NATS cluster, else 1. */}}
{{- define "ojs-nats.streamReplicas" -}}
{{- $explicit := .Values.gateway.config.replicas }}
{{- if not (kindIs "invalid" $explicit) }}
{{- if and .Values.nats.enabled (gt (int $explicit) (int (include "ojs-nats.nats.replicas" .))) }}
{{- fail (printf "gateway.config.replicas=%d exceeds the %s NATS nodes this chart runs" (int $explicit) (include "ojs-nats.nats.replicas" .)) }}
{{- end }}
{{- int $explicit }}
{{- else if include "ojs-nats.nats.clustered" . }}3
{{- else }}1
{{- end }}
{{- end }}

{{/*
Pod termination budget of a gateway: the preStop sleep, OJS_SHUTDOWN_DELAY_S, then
OJS_DRAIN_TIMEOUT_S for in-flight requests, then 10 s to stop the timer runner and drain NATS.
*/}}
{{- define "ojs-nats.gateway.terminationGracePeriodSeconds" -}}
{{- add (int .Values.gateway.preStopSleepSeconds) (int .Values.gateway.config.shutdownDelayS) (int .Values.gateway.config.drainTimeoutS) 10 }}
{{- end }}

{{- define "ojs-nats.serverSettings.name" -}}
{{- printf "%s-server-settings" (include "ojs-nats.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The server settings: the variables of README.md ("Environment variables") that the service and
storage layers read, so gateways and direct workers (`ojs-nats worker --direct`) must agree on
them. Rendered as the data of the server-settings ConfigMap, which both take with envFrom: a
worker with another OJS_NAMESPACE or OJS_REPLICAS would use other streams or re-provision them.
*/}}
{{- define "ojs-nats.serverSettings" -}}
{{- $c := .Values.gateway.config -}}
NATS_URL: {{ include "ojs-nats.natsUrl" . | quote }}
OJS_NAMESPACE: {{ $c.namespace | quote }}
OJS_REPLICAS: {{ include "ojs-nats.streamReplicas" . | quote }}
OJS_MAX_BODY_BYTES: {{ int64 $c.maxBodyBytes | quote }}
OJS_DEFAULT_VISIBILITY_TIMEOUT_MS: {{ int64 $c.defaultVisibilityTimeoutMs | quote }}
OJS_DEFAULT_HEARTBEAT_TIMEOUT_MS: {{ int64 $c.defaultHeartbeatTimeoutMs | quote }}
OJS_DEFAULT_TIMEOUT_MS: {{ int64 $c.defaultTimeoutMs | quote }}
OJS_WORKER_HEARTBEAT_TIMEOUT_MS: {{ int64 $c.workerHeartbeatTimeoutMs | quote }}
OJS_FINISHED_RETENTION_S: {{ int64 $c.finishedRetentionS | quote }}
OJS_DEAD_LETTER_RETENTION_S: {{ int64 $c.deadLetterRetentionS | quote }}
OJS_DEAD_LETTER_MAX_COUNT: {{ int64 $c.deadLetterMaxCount | quote }}
OJS_EVENTS_MAX_AGE_S: {{ int64 $c.eventsMaxAgeS | quote }}
OJS_EVENTS_MAX_COUNT: {{ int64 $c.eventsMaxCount | quote }}
OJS_SERVICE_NAME: {{ $c.serviceName | quote }}
{{- end }}

{{/*
The gateway's own variables, beside the server settings it takes from the ConfigMap: together
exactly the variables of README.md ("Environment variables"), each from gateway.config.
OJS_NATS_SERVER_BIN is left out: it only matters to `ojs-nats dev` and the tests, which start
their own nats-server.
*/}}
{{- define "ojs-nats.gateway.env" -}}
{{- $c := .Values.gateway.config -}}
- name: OJS_HOST
  value: {{ $c.host | quote }}
- name: OJS_PORT
  value: {{ int $c.port | quote }}
- name: OJS_ENABLE_TEST_RESET
  value: {{ ternary "1" "0" $c.enableTestReset | quote }}
- name: OJS_DRAIN_TIMEOUT_S
  value: {{ int $c.drainTimeoutS | quote }}
- name: OJS_SHUTDOWN_DELAY_S
  value: {{ int $c.shutdownDelayS | quote }}
- name: OJS_WORKERS
  value: {{ int $c.workers | quote }}
- name: OJS_LOG_LEVEL
  value: {{ $c.logLevel | quote }}
{{- end }}

{{/* Anti-affinity on the node for pods with the given selector labels. */}}
{{- define "ojs-nats.antiAffinity" -}}
{{- if eq .mode "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "ojs-nats.selectorLabels" . | nindent 10 }}
{{- else if eq .mode "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "ojs-nats.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}

{{/*
NATS max_payload: explicit, or 4 bodies (the job bucket's max_msg_size, set by
ojs_nats/storage/provision.py) plus 64 KiB of headroom for headers. NATS refuses more than 64 MiB.
*/}}
{{- define "ojs-nats.nats.maxPayload" -}}
{{- $payload := .Values.nats.config.maxPayload }}
{{- if kindIs "invalid" $payload }}
{{- $payload = add (mul 4 (int64 .Values.gateway.config.maxBodyBytes)) 65536 }}
{{- end }}
{{- if gt (int64 $payload) 67108864 }}
{{- fail (printf "NATS max_payload %d exceeds NATS's 64 MiB limit: lower gateway.config.maxBodyBytes" (int64 $payload)) }}
{{- end }}
{{- int64 $payload }}
{{- end }}

{{/*
The NATS server configuration as a dict, rendered to JSON (which nats-server reads as its own
format). Values NATS must see unquoted (environment references, size units) are written as
"@raw:<text>" here and unquoted by ojs-nats.nats.conf.
*/}}
{{- define "ojs-nats.nats.configDict" -}}
{{- $c := .Values.nats.config -}}
{{- $js := $c.jetstream -}}
{{- $conf := dict
  "server_name" "@raw:$POD_NAME"
  "listen" (printf "0.0.0.0:%d" (int $c.nats.port))
  "pid_file" "/var/run/nats/nats.pid"
  "lame_duck_duration" $c.lameDuckDuration
  "lame_duck_grace_period" $c.lameDuckGracePeriod
  "max_payload" (include "ojs-nats.nats.maxPayload" . | int64)
-}}
{{- if $c.monitor.enabled }}
{{- $_ := set $conf "http" (printf "0.0.0.0:%d" (int $c.monitor.port)) }}
{{- end }}
{{- if not $js.enabled }}
{{- fail "nats.config.jetstream.enabled must be true: ojs-nats keeps every job in JetStream" }}
{{- end }}
{{- $jetstream := dict "sync_interval" $js.syncInterval }}
{{- if $js.fileStore.enabled }}
{{- $_ := set $jetstream "store_dir" $js.fileStore.dir }}
{{- with $js.fileStore.maxSize }}
{{- $_ := set $jetstream "max_file_store" (printf "@raw:%s" .) }}
{{- end }}
{{- else }}
{{- $_ := set $jetstream "max_file_store" 0 }}
{{- end }}
{{- if $js.memoryStore.enabled }}
{{- with $js.memoryStore.maxSize }}
{{- $_ := set $jetstream "max_memory_store" (printf "@raw:%s" .) }}
{{- end }}
{{- else }}
{{- $_ := set $jetstream "max_memory_store" 0 }}
{{- end }}
{{- $_ := set $conf "jetstream" $jetstream }}
{{- if include "ojs-nats.nats.clustered" . }}
{{- $sts := include "ojs-nats.nats.fullname" . }}
{{- $headless := include "ojs-nats.nats.headless" . }}
{{- $suffix := ternary (printf ".%s" (include "ojs-nats.svcDomain" .)) "" $c.cluster.routeURLs.useFQDN }}
{{- $routes := list }}
{{- range $i := until (int (include "ojs-nats.nats.replicas" .)) }}
{{- $routes = append $routes (printf "nats://%s-%d.%s%s:%d" $sts $i $headless $suffix (int $c.cluster.port)) }}
{{- end }}
{{- $_ := set $conf "cluster" (dict
  "name" ($c.cluster.name | default $sts)
  "listen" (printf "0.0.0.0:%d" (int $c.cluster.port))
  "routes" $routes
  "no_advertise" true
  "connect_retries" 120) }}
{{- end }}
{{- toJson (mergeOverwrite $conf (deepCopy $c.merge)) }}
{{- end }}

{{- define "ojs-nats.nats.conf" -}}
{{- $json := include "ojs-nats.nats.configDict" . | fromJson | toPrettyJson }}
{{- regexReplaceAll "\"@raw:([^\"]*)\"" $json "${1}" }}
{{- end }}

{{/* Stream and consumer names the gateway uses for a queue's ready index (storage/names.py). */}}
{{- define "ojs-nats.readyStream" -}}
{{- printf "%s_READY" (upper .Values.gateway.config.namespace) }}
{{- end }}

{{- define "ojs-nats.readyConsumer" -}}
{{- $p := int .priority }}
{{- printf "ready_%s_%s%d" (replace "." "_" .queue) (ternary "n" "p" (lt $p 0)) (ternary (mul -1 $p) $p (lt $p 0)) }}
{{- end }}

{{/*
GOMEMLIMIT for nats-server: 90% of the container's memory limit, in bytes (empty without a
limit). Without it the Go runtime lets the heap grow to twice its live data before collecting
(GOGC=100), so a pod can reach its limit and be OOM-killed while its live data fits; with it
the collector works harder as the process nears the limit. Quantities: whole bytes, or with a
k/M/G/T or Ki/Mi/Gi/Ti suffix (for others, set nats.container.env.GOMEMLIMIT yourself).
*/}}
{{- define "ojs-nats.nats.goMemLimit" -}}
{{- $limit := dig "limits" "memory" "" .Values.nats.container.resources | toString -}}
{{- if $limit -}}
{{- if not (regexMatch "^[0-9]+([kMGT]i?)?$" $limit) -}}
{{- fail (printf "nats.container.resources.limits.memory %q: GOMEMLIMIT is derived from it, so use a whole number with an optional k/M/G/T or Ki/Mi/Gi/Ti suffix, or set nats.container.env.GOMEMLIMIT" $limit) -}}
{{- end -}}
{{- $number := regexFind "^[0-9]+" $limit | int64 -}}
{{- $unit := regexFind "[kMGT]i?$" $limit -}}
{{- $scale := get (dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit -}}
{{- div (mul $number (int64 $scale) 9) 10 -}}
{{- end -}}
{{- end }}

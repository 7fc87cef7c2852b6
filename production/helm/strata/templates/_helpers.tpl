{{/* Names, labels and the pieces every Strata pod shares. */}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "ingester"). */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/* Labels that select a component's pods; a zone narrows them to one zone's StatefulSet. */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .zone }}
strata.io/zone: {{ .zone }}
{{- end }}
{{- end -}}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Whether the processes form their rings over memberlist (else the in-process ring of one -target=all). */}}
{{- define "strata.memberlist" -}}
{{- if or (eq .Values.mode "microservices") (gt (int .Values.singleBinary.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- define "strata.scheme" -}}
{{- if .Values.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{- define "strata.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "strata.fullname" .)) -}}
{{- end -}}

{{- define "strata.authSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "strata.fullname" .)) -}}
{{- end -}}

{{- define "strata.storageSecretName" -}}
{{- $b := .Values.storage.backend -}}
{{- $existing := "" -}}
{{- if eq $b "s3" }}{{ $existing = .Values.storage.s3.existingSecret }}{{ end -}}
{{- if eq $b "gcs" }}{{ $existing = .Values.storage.gcs.existingSecret }}{{ end -}}
{{- if eq $b "azure" }}{{ $existing = .Values.storage.azure.existingSecret }}{{ end -}}
{{- $existing | default (printf "%s-storage" (include "strata.fullname" .)) -}}
{{- end -}}

{{/* Whether the storage backend takes credentials from a Secret (one the chart creates or an existing one). */}}
{{- define "strata.storageHasSecret" -}}
{{- $s := .Values.storage -}}
{{- if and (eq $s.backend "s3") (or $s.s3.existingSecret $s.s3.accessKeyId) -}}true{{- end -}}
{{- if and (eq $s.backend "gcs") (or $s.gcs.existingSecret $s.gcs.serviceAccount) -}}true{{- end -}}
{{- if and (eq $s.backend "azure") (or $s.azure.existingSecret $s.azure.accountKey) -}}true{{- end -}}
{{- end -}}

{{/* The shared filesystem bucket of microservices mode. */}}
{{- define "strata.sharedBucket" -}}
{{- if and (eq .Values.mode "microservices") (eq .Values.storage.backend "filesystem") -}}true{{- end -}}
{{- end -}}

{{- define "strata.bucketClaimName" -}}
{{- .Values.storage.filesystem.persistence.existingClaim | default (printf "%s-bucket" (include "strata.fullname" .)) -}}
{{- end -}}

{{/* Total replicas of a zone-aware component: per-zone replicas times the zones. */}}
{{- define "strata.totalReplicas" -}}
{{- $v := index .ctx.Values .key -}}
{{- if and .ctx.Values.zoneAwareReplication.enabled (eq .ctx.Values.mode "microservices") -}}
{{- mul (int $v.replicas) (len .ctx.Values.zoneAwareReplication.zones) -}}
{{- else -}}
{{- int $v.replicas -}}
{{- end -}}
{{- end -}}

{{/*
The configuration file every process reads (-config.file): what all components share. Keys mirror the
flags (docs/configuration.md). .Values.config is merged over it.
*/}}
{{- define "strata.config" -}}
{{- $fullname := include "strata.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $scheme := include "strata.scheme" . -}}
{{- $s := .Values.storage -}}
{{- $cfg := dict "data" (dict "dir" "/data") "auth" (dict "multitenancy_enabled" .Values.multitenancy.enabled) -}}
{{- $bs := dict "backend" $s.backend -}}
{{- if eq $s.backend "filesystem" -}}
{{- if eq .Values.mode "microservices" -}}
{{- $_ := set $bs "filesystem" (dict "dir" "/bucket") -}}
{{- end -}}
{{- else if eq $s.backend "s3" -}}
{{- $_ := set $bs "s3" (dict "endpoint" $s.s3.endpoint "bucket_name" $s.s3.bucketName "region" $s.s3.region "insecure" $s.s3.insecure "bucket_lookup_type" $s.s3.bucketLookupType) -}}
{{- else if eq $s.backend "gcs" -}}
{{- $_ := set $bs "gcs" (dict "bucket_name" $s.gcs.bucketName) -}}
{{- else if eq $s.backend "azure" -}}
{{- $_ := set $bs "azure" (dict "account_name" $s.azure.accountName "container_name" $s.azure.containerName "endpoint_suffix" $s.azure.endpointSuffix) -}}
{{- else -}}
{{- fail (printf "storage.backend %q: use filesystem, s3, gcs or azure" $s.backend) -}}
{{- end -}}
{{- $_ := set $cfg "blocks_storage" $bs -}}
{{- if .Values.runtimeConfig -}}
{{- $_ := set $cfg "runtime_config" (dict "file" "/etc/strata/config/runtime.yaml") -}}
{{- end -}}
{{- if include "strata.memberlist" . -}}
{{- $_ := set $cfg "memberlist" (dict "join" (list (printf "%s-gossip-ring.%s.svc.cluster.local:%d" $fullname $ns (int .Values.memberlist.port))) "bind_port" (int .Values.memberlist.port)) -}}
{{- $ingesterRing := dict "store" "memberlist" "tokens_file_path" "/data/tokens" -}}
{{- $_ := set $cfg "ingester" (dict "ring" $ingesterRing) -}}
{{- $rf := int .Values.replicationFactor -}}
{{- if eq .Values.mode "single-binary" -}}
{{- $rf = min 3 (int .Values.singleBinary.replicas) -}}
{{- end -}}
{{- $dist := dict "replication_factor" $rf -}}
{{- if and .Values.zoneAwareReplication.enabled (eq .Values.mode "microservices") -}}
{{- $_ := set $dist "zone_awareness_enabled" true -}}
{{- end -}}
{{- $_ := set $cfg "distributor" $dist -}}
{{- /* Each ring member advertises its pod IP (the POD_IP variable, from the downward API): the default,
the first private IPv4 address, misses pod networks outside the private ranges. */ -}}
{{- $ip := "${POD_IP}" -}}
{{- $rings := dict "ingester" (dict "ring" (dict "instance_addr" $ip)) "distributor" (dict "ring" (dict "instance_addr" $ip)) "compactor" (dict "ring" (dict "instance_addr" $ip)) "store_gateway" (dict "sharding_ring" (dict "instance_addr" $ip)) "ruler" (dict "ring" (dict "instance_addr" $ip)) "alertmanager" (dict "sharding_ring" (dict "instance_addr" $ip)) "memberlist" (dict "advertise_addr" $ip) -}}
{{- $cfg = mustMergeOverwrite $cfg $rings -}}
{{- end -}}
{{- if eq .Values.mode "microservices" -}}
{{- $sgTotal := int (include "strata.totalReplicas" (dict "ctx" . "key" "storeGateway")) -}}
{{- $cfg = mustMergeOverwrite $cfg (dict "store_gateway" (dict "sharding_ring" (dict "replication_factor" (min (int .Values.storeGateway.replicationFactor) $sgTotal)))) -}}
{{- $_ := set $cfg "querier" (dict "frontend_address" (printf "%s-query-frontend-headless.%s.svc.cluster.local:9095" $fullname $ns)) -}}
{{- if .Values.ruler.enabled -}}
{{- $amURL := include "strata.rulerAlertmanagerURL" (dict "ctx" . "userinfo" "") -}}
{{- if $amURL -}}
{{- $cfg = mustMergeOverwrite $cfg (dict "ruler" (dict "alertmanager_url" $amURL)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.alertmanager.enabled -}}
{{- $am := dict "sharding_ring" (dict "replication_factor" (min 3 (int .Values.alertmanager.replicas))) -}}
{{- if .Values.alertmanager.externalURL -}}
{{- $_ := set $am "web" (dict "external_url" .Values.alertmanager.externalURL) -}}
{{- end -}}
{{- $cfg = mustMergeOverwrite $cfg (dict "alertmanager" $am) -}}
{{- end -}}
{{- else if .Values.alertmanager.externalURL -}}
{{- $cfg = mustMergeOverwrite $cfg (dict "alertmanager" (dict "web" (dict "external_url" .Values.alertmanager.externalURL))) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy .Values.config)) -}}
{{- end -}}

{{/* Where the ruler sends alerts: ruler.alertmanagerURL, else this release's Alertmanager. */}}
{{- define "strata.rulerAlertmanagerURL" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.Values.ruler.alertmanagerURL -}}
{{- $ctx.Values.ruler.alertmanagerURL -}}
{{- else if $ctx.Values.alertmanager.enabled -}}
{{- printf "%s://%s%s-alertmanager.%s.svc.cluster.local:8080/alertmanager" (include "strata.scheme" $ctx) .userinfo (include "strata.fullname" $ctx) $ctx.Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
Flags of TLS and authentication, rendered only when the values turn them on. They are flags rather than
config-file keys so that a renamed flag fails `strata -config.verify` by name.
*/}}
{{- define "strata.securityArgs" -}}
{{- if .Values.tls.enabled }}
{{- $t := .Values.tls }}
{{- range $srv := list "http" "grpc" }}
- -server.{{ $srv }}-tls-cert-path=/etc/strata/tls/tls.crt
- -server.{{ $srv }}-tls-key-path=/etc/strata/tls/tls.key
- -server.{{ $srv }}-tls-ca-path=/etc/strata/tls/ca.crt
- -server.{{ $srv }}-tls-client-auth={{ ternary $t.httpClientAuth $t.grpcClientAuth (eq $srv "http") }}
{{- end }}
- -server.tls-min-version={{ $t.minVersion }}
{{- $clients := list "ingester.client" "store-gateway.client" "querier.frontend-client" "ruler.client" "alertmanager.alertmanager-client" }}
{{- if and (eq .Values.mode "microservices") .Values.ruler.enabled .Values.alertmanager.enabled (not .Values.ruler.alertmanagerURL) }}
{{- /* The ruler's notifications to this release's Alertmanager (HTTPS). */}}
{{- $clients = append $clients "ruler.alertmanager-client" }}
{{- end }}
{{- range $client := $clients }}
- -{{ $client }}.tls-enabled=true
- -{{ $client }}.tls-cert-path=/etc/strata/tls/tls.crt
- -{{ $client }}.tls-key-path=/etc/strata/tls/tls.key
- -{{ $client }}.tls-ca-path=/etc/strata/tls/ca.crt
- -{{ $client }}.tls-server-name={{ $t.serverName }}
{{- end }}
{{- if and $t.memberlist (include "strata.memberlist" .) }}
- -memberlist.tls-enabled=true
- -memberlist.tls-cert-path=/etc/strata/tls/tls.crt
- -memberlist.tls-key-path=/etc/strata/tls/tls.key
- -memberlist.tls-ca-path=/etc/strata/tls/ca.crt
- -memberlist.tls-server-name={{ $t.serverName }}
{{- end }}
{{- end }}
{{- if ne .Values.auth.type "header" }}
- -auth.type={{ .Values.auth.type }}
{{- if or .Values.auth.credentials .Values.auth.existingSecret }}
- -auth.credentials-file=/etc/strata/auth/credentials.yaml
{{- end }}
{{- if eq .Values.auth.type "mtls" }}
- -auth.mtls-identity={{ .Values.auth.mtlsIdentity }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Flags of the storage credentials, read from the environment the Secret fills ($(VAR) is expanded by Kubernetes). */}}
{{- define "strata.storageArgs" -}}
{{- if include "strata.storageHasSecret" . }}
{{- if eq .Values.storage.backend "s3" }}
- -blocks-storage.s3.access-key-id=$(AWS_ACCESS_KEY_ID)
- -blocks-storage.s3.secret-access-key=$(AWS_SECRET_ACCESS_KEY)
{{- else if eq .Values.storage.backend "gcs" }}
- -blocks-storage.gcs.service-account=$(GCS_SERVICE_ACCOUNT)
{{- else if eq .Values.storage.backend "azure" }}
- -blocks-storage.azure.account-key=$(AZURE_ACCOUNT_KEY)
{{- end }}
{{- end }}
{{- end -}}

{{- define "strata.storageEnv" -}}
{{- if include "strata.storageHasSecret" . }}
{{- $secret := include "strata.storageSecretName" . }}
{{- $keys := list }}
{{- if eq .Values.storage.backend "s3" }}{{ $keys = list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}{{ end }}
{{- if eq .Values.storage.backend "gcs" }}{{ $keys = list "GCS_SERVICE_ACCOUNT" }}{{ end }}
{{- if eq .Values.storage.backend "azure" }}{{ $keys = list "AZURE_ACCOUNT_KEY" }}{{ end }}
{{- range $keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
A Strata container. Call with (dict "ctx" $ "component" "ingester" "target" "ingester" "values" $.Values.ingester
"zone" "zone-a" "persistent" true).
*/}}
{{- define "strata.container" -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
- name: strata
  image: {{ $ctx.Values.image.repository }}:{{ $v.imageTag | default $ctx.Values.image.tag | default $ctx.Chart.AppVersion }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - -target={{ .target }}
    - -config.file=/etc/strata/config/strata.yaml
    - -config.expand-env=true
    {{- if .zone }}
    {{- if eq .component "ingester" }}
    - -ingester.ring.instance-availability-zone={{ .zone }}
    {{- else if eq .component "store-gateway" }}
    - -store-gateway.sharding-ring.instance-availability-zone={{ .zone }}
    {{- end }}
    {{- end }}
    {{- with include "strata.storageArgs" $ctx | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "strata.securityArgs" $ctx | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- $amAuth := $ctx.Values.ruler.alertmanagerBasicAuth }}
    {{- if and (eq .component "ruler") $amAuth.username }}
    - -ruler.alertmanager-url={{ include "strata.rulerAlertmanagerURL" (dict "ctx" $ctx "userinfo" (printf "%s:$(RULER_ALERTMANAGER_PASSWORD)@" $amAuth.username)) }}
    {{- end }}
    {{- range $name, $value := $ctx.Values.extraArgs }}
    {{- if not (hasKey $v.extraArgs $name) }}
    - -{{ $name }}={{ $value }}
    {{- end }}
    {{- end }}
    {{- range $name, $value := $v.extraArgs }}
    - -{{ $name }}={{ $value }}
    {{- end }}
  {{- $env := concat (list) ($ctx.Values.extraEnv | default list) ($v.extraEnv | default list) }}
  {{- if include "strata.memberlist" $ctx }}
  {{- $env = prepend $env (dict "name" "POD_IP" "valueFrom" (dict "fieldRef" (dict "fieldPath" "status.podIP"))) }}
  {{- end }}
  {{- with and (has .component (list "ingester" "single-binary")) $v.prepareShutdownOnStop $v.prepareShutdownCredentials.existingSecret }}
  {{- /* The admin credential of the preStop hook, in the variables stratatool reads. */}}
  {{- range $var, $key := dict "STRATA_API_USER" "username" "STRATA_API_KEY" "password" "STRATA_AUTH_TOKEN" "token" }}
  {{- $env = append $env (dict "name" $var "valueFrom" (dict "secretKeyRef" (dict "name" $v.prepareShutdownCredentials.existingSecret "key" $key "optional" true))) }}
  {{- end }}
  {{- end }}
  {{- if and (eq .component "ruler") $amAuth.username }}
  {{- $env = append $env (dict "name" "RULER_ALERTMANAGER_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" (required "ruler.alertmanagerBasicAuth.passwordSecret.name" $amAuth.passwordSecret.name) "key" (required "ruler.alertmanagerBasicAuth.passwordSecret.key" $amAuth.passwordSecret.key)))) }}
  {{- end }}
  {{- $storageEnv := include "strata.storageEnv" $ctx }}
  {{- if or $env (trim $storageEnv) }}
  env:
    {{- with trim $storageEnv }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: http
      containerPort: 8080
      protocol: TCP
    - name: grpc
      containerPort: 9095
      protocol: TCP
    {{- if include "strata.memberlist" $ctx }}
    - name: gossip
      containerPort: {{ $ctx.Values.memberlist.port }}
      protocol: TCP
    {{- if not (and $ctx.Values.tls.enabled $ctx.Values.tls.memberlist) }}
    - name: gossip-udp
      containerPort: {{ $ctx.Values.memberlist.port }}
      protocol: UDP
    {{- end }}
    {{- end }}
  {{- if and (has .component (list "ingester" "single-binary")) $v.prepareShutdownOnStop }}
  lifecycle:
    preStop:
      exec:
        # The ingester leaves the ring when it stops, so its series move to the others (scale-down).
        command:
          - /bin/stratatool
          - --address={{ include "strata.scheme" $ctx }}://localhost:8080
          {{- if $ctx.Values.tls.enabled }}
          - --tls-ca-path=/etc/strata/tls/ca.crt
          - --tls-server-name={{ $ctx.Values.tls.serverName }}
          - --tls-cert-path=/etc/strata/tls/tls.crt
          - --tls-key-path=/etc/strata/tls/tls.key
          {{- end }}
          - ingester
          - prepare-shutdown
  {{- end }}
  readinessProbe:
    httpGet:
      path: /ready
      port: http
      scheme: {{ include "strata.scheme" $ctx | upper }}
    initialDelaySeconds: 10
    periodSeconds: 10
    timeoutSeconds: 5
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $ctx.Values.containerSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: config
      mountPath: /etc/strata/config
      readOnly: true
    - name: data
      mountPath: /data
    # The root filesystem is read-only; some work files go to the temporary directory (the Alertmanager
    # checks a configuration's templates there).
    - name: tmp
      mountPath: /tmp
    {{- if include "strata.sharedBucket" $ctx }}
    - name: bucket
      mountPath: /bucket
    {{- end }}
    {{- if $ctx.Values.tls.enabled }}
    - name: tls
      mountPath: /etc/strata/tls
      readOnly: true
    {{- end }}
    {{- if and (ne $ctx.Values.auth.type "header") (or $ctx.Values.auth.credentials $ctx.Values.auth.existingSecret) }}
    - name: auth
      mountPath: /etc/strata/auth
      readOnly: true
    {{- end }}
{{- end -}}

{{/* Volumes of a Strata pod; the data volume is an emptyDir unless the pod has a claim template. */}}
{{- define "strata.volumes" -}}
{{- $ctx := .ctx -}}
- name: config
  configMap:
    name: {{ include "strata.fullname" $ctx }}-config
{{- if not .persistent }}
- name: data
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir: {}
{{- if include "strata.sharedBucket" $ctx }}
- name: bucket
  persistentVolumeClaim:
    claimName: {{ include "strata.bucketClaimName" $ctx }}
{{- end }}
{{- if $ctx.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "strata.tlsSecretName" $ctx }}
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      - {key: ca.crt, path: ca.crt}
{{- end }}
{{- if and (ne $ctx.Values.auth.type "header") (or $ctx.Values.auth.credentials $ctx.Values.auth.existingSecret) }}
- name: auth
  secret:
    secretName: {{ include "strata.authSecretName" $ctx }}
    items:
      - {key: credentials.yaml, path: credentials.yaml}
{{- end }}
{{- end -}}

{{/* The pod template of a component. Takes the same dict as strata.container. */}}
{{- define "strata.podTemplate" -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
metadata:
  labels:
    {{- include "strata.labels" . | nindent 4 }}
    {{- if include "strata.memberlist" $ctx }}
    app.kubernetes.io/part-of: memberlist
    {{- end }}
    {{- with $ctx.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "strata.config" $ctx | sha256sum }}
    {{- with $ctx.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "strata.serviceAccountName" $ctx }}
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $ctx.Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  containers:
    {{- include "strata.container" . | nindent 4 }}
  {{- $nodeSelector := $v.nodeSelector | default dict }}
  {{- if .zoneValues }}
  {{- $nodeSelector = merge (deepCopy (.zoneValues.nodeSelector | default dict)) $nodeSelector }}
  {{- end }}
  {{- with $nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $tolerations := $v.tolerations | default list }}
  {{- if .zoneValues }}
  {{- $tolerations = concat $tolerations (.zoneValues.tolerations | default list) }}
  {{- end }}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumes:
    {{- include "strata.volumes" . | nindent 4 }}
{{- end -}}

{{/* The components of microservices mode: their values key, target and kind. */}}
{{- define "strata.components" -}}
distributor: {key: distributor, kind: Deployment}
querier: {key: querier, kind: Deployment}
query-frontend: {key: queryFrontend, kind: Deployment}
ingester: {key: ingester, kind: StatefulSet, zoned: true}
store-gateway: {key: storeGateway, kind: StatefulSet, zoned: true}
compactor: {key: compactor, kind: StatefulSet}
ruler: {key: ruler, kind: StatefulSet, optional: true}
alertmanager: {key: alertmanager, kind: StatefulSet, optional: true}
{{- end -}}

{{/* The components this release runs, as a map like strata.components (single-binary: one). */}}
{{- define "strata.enabledComponents" -}}
{{- $out := dict -}}
{{- if eq .Values.mode "single-binary" -}}
{{- $_ := set $out "single-binary" (dict "key" "singleBinary" "kind" "StatefulSet" "target" "all") -}}
{{- else if eq .Values.mode "microservices" -}}
{{- range $name, $c := include "strata.components" . | fromYaml -}}
{{- if or (not $c.optional) (index $.Values $c.key).enabled -}}
{{- $_ := set $c "target" $name -}}
{{- $_ := set $out $name $c -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- fail (printf "mode %q: use single-binary or microservices" .Values.mode) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* A claim template for the /data volume of a StatefulSet's pods. */}}
{{- define "strata.dataClaim" -}}
- metadata:
    name: data
  spec:
    accessModes: [ReadWriteOnce]
    {{- with .persistence.storageClass }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .persistence.size }}
{{- end -}}

{{/* Names and labels. */}}
{{- define "fees-api.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fees-api.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fees-api.labels" -}}
{{ include "fees-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fees-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fees-api.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fees-api.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end -}}

{{/* A secret's value as an environment variable: name, secret ref. Nothing when the ref names no Secret. */}}
{{- define "fees-api.secretEnv" -}}
{{- if .ref.name }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end }}
{{- end -}}

{{/* The environment every process of the release shares (docs/configuration.md). */}}
{{- define "fees-api.env" -}}
{{- $tls := .Values.temporal.tls -}}
- name: NODE_ENV
  value: {{ ternary "production" "development" .Values.production | quote }}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: {{ .Values.api.port | quote }}
- name: WORKER_PORT
  value: {{ .Values.worker.port | quote }}
- name: MIGRATIONS
  value: verify
- name: DB_POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
- name: TEMPORAL_ADDRESS
  value: {{ required "temporal.address is required: the frontend of an existing Temporal" .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: TEMPORAL_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
{{- if $tls.enabled }}
- name: TEMPORAL_TLS
  value: "true"
{{- if $tls.serverCaKey }}
- name: TEMPORAL_TLS_SERVER_CA_PATH
  value: /etc/fees-api/temporal-tls/{{ $tls.serverCaKey }}
{{- end }}
{{- if $tls.clientCertKey }}
- name: TEMPORAL_TLS_CERT_PATH
  value: /etc/fees-api/temporal-tls/{{ $tls.clientCertKey }}
- name: TEMPORAL_TLS_KEY_PATH
  value: /etc/fees-api/temporal-tls/{{ required "temporal.tls.clientKeyKey goes with clientCertKey" $tls.clientKeyKey }}
{{- end }}
{{- if $tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ $tls.serverName | quote }}
{{- end }}
{{- end }}
- name: WORKER_SHUTDOWN_GRACE_TIME_MS
  value: {{ .Values.worker.shutdownGraceTimeMs | quote }}
- name: WORKER_SHUTDOWN_FORCE_TIME_MS
  value: {{ .Values.worker.shutdownForceTimeMs | quote }}
{{- with .Values.codecCorsOrigins }}
- name: CODEC_CORS_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
- name: DATA_DIR
  value: /var/lib/fees-api
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- if not .Values.database.urlSecret.name }}
{{- fail "database.urlSecret.name is required: an existing Secret holding DATABASE_URL" }}
{{- end }}
{{- include "fees-api.secretEnv" (dict "name" "DATABASE_URL" "ref" .Values.database.urlSecret) }}
{{- if and .Values.production (not .Values.secrets.webhookSecretsKey.name) }}
{{- fail "secrets.webhookSecretsKey.name is required with production: true" }}
{{- end }}
{{- include "fees-api.secretEnv" (dict "name" "WEBHOOK_SECRETS_KEY" "ref" .Values.secrets.webhookSecretsKey) }}
{{- include "fees-api.secretEnv" (dict "name" "PAYLOAD_ENCRYPTION_KEYS" "ref" .Values.secrets.payloadEncryptionKeys) }}
{{- include "fees-api.secretEnv" (dict "name" "SMTP_URL" "ref" .Values.secrets.smtpUrl) }}
{{- include "fees-api.secretEnv" (dict "name" "TEMPORAL_API_KEY" "ref" .Values.temporal.apiKeySecret) }}
{{- end -}}

{{/* Writable directories on a read-only root: the outbox, and tsx's compile cache under /tmp. */}}
{{- define "fees-api.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ required "temporal.tls.secretName is required with temporal.tls.enabled" .Values.temporal.tls.secretName }}
{{- end }}
{{- end -}}

{{- define "fees-api.volumeMounts" -}}
- name: data
  mountPath: /var/lib/fees-api
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/fees-api/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* What every pod of the release runs with. */}}
{{- define "fees-api.podCommon" -}}
serviceAccountName: {{ include "fees-api.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "fees-api.volumes" . | nindent 2 }}
{{- end -}}

#!/usr/bin/env bash
# Deploy Redis and MinIO to the current kube context and port-forward them to this machine,
# so `npm start` (or `npm run rest` / `npm run worker`) runs locally against them.
# Idempotent: re-running re-applies the manifests and replaces the previous port-forwards.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
NAMESPACE="${MSAAS_NAMESPACE:-msaas-dev}"
ROLLOUT_TIMEOUT="${MSAAS_ROLLOUT_TIMEOUT:-180s}"
REDIS_LOCAL_PORT="${REDIS_LOCAL_PORT:-6379}"
MINIO_LOCAL_PORT="${MINIO_LOCAL_PORT:-9000}"
MINIO_CONSOLE_LOCAL_PORT="${MINIO_CONSOLE_LOCAL_PORT:-9001}"
STATE_DIR="${MSAAS_STATE_DIR:-${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/msaas-dev}"
ACTION=deploy

usage() {
  cat <<EOF
Usage: $(basename "$0") [options]

Deploys redis/ and minio/ (kustomize) into namespace ${NAMESPACE} of the current kube context,
waits until they are ready and the buckets exist, then starts kubectl port-forward in the background:
  Redis          127.0.0.1:${REDIS_LOCAL_PORT}  -> svc/redis:6379
  MinIO S3 API   127.0.0.1:${MINIO_LOCAL_PORT}  -> svc/minio:9000
  MinIO console  127.0.0.1:${MINIO_CONSOLE_LOCAL_PORT}  -> svc/minio:9001
Running it again is safe: manifests are re-applied and old port-forwards are replaced.

Options:
  -n, --namespace NS   namespace to use (default: msaas-dev, env MSAAS_NAMESPACE)
      --stop           stop the port-forwards this script started, and exit
  -h, --help           show this help

Environment:
  KUBECTL                 kubectl binary (default: kubectl)
  MSAAS_ROLLOUT_TIMEOUT   how long to wait for Redis/MinIO (default: 180s)
  REDIS_LOCAL_PORT, MINIO_LOCAL_PORT, MINIO_CONSOLE_LOCAL_PORT   local ports (6379, 9000, 9001)
  MSAAS_STATE_DIR         where the pidfile and port-forward logs go (default: \$XDG_RUNTIME_DIR/msaas-dev or /tmp/msaas-dev)
EOF
}

die() {
  echo "deploy-local-dev: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -n | --namespace)
      [ $# -ge 2 ] || die "$1 needs a value"
      NAMESPACE="$2"; shift 2 ;;
    --namespace=*) NAMESPACE="${1#*=}"; shift ;;
    --stop) ACTION=stop; shift ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

PIDFILE="${STATE_DIR}/port-forward-${NAMESPACE}.pids"

# A pid from the pidfile is ours only if it is still a port-forward (pids get reused).
is_our_forward() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/${pid}/cmdline" ]; then
    tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q 'port-forward'
  else
    ps -o args= -p "$pid" 2>/dev/null | grep -q 'port-forward'
  fi
}

stop_forwards() {
  [ -f "$PIDFILE" ] || return 0
  local name pid
  while read -r name pid; do
    if is_our_forward "$pid"; then
      kill "$pid" 2>/dev/null || true
      echo "stopped port-forward ${name} (pid ${pid})"
    fi
  done <"$PIDFILE"
  rm -f "$PIDFILE"
}

if [ "$ACTION" = stop ]; then
  stop_forwards
  exit 0
fi

command -v "$KUBECTL" >/dev/null 2>&1 ||
  die "kubectl not found (looked for '${KUBECTL}'). Install it: https://kubernetes.io/docs/tasks/tools/"
CONTEXT="$("$KUBECTL" config current-context 2>/dev/null)" || CONTEXT=""
[ -n "$CONTEXT" ] ||
  die "no current kube context. Start a local cluster (kind create cluster, minikube start, k3d cluster create) or pick one: kubectl config use-context NAME"

k() { "$KUBECTL" --context "$CONTEXT" -n "$NAMESPACE" "$@"; }

"$KUBECTL" --context "$CONTEXT" --request-timeout=15s version >/dev/null 2>&1 ||
  die "cannot reach the API server of context '${CONTEXT}' (is the cluster running? try: kubectl --context ${CONTEXT} cluster-info)"

echo "==> context ${CONTEXT}, namespace ${NAMESPACE}"
"$KUBECTL" --context "$CONTEXT" get namespace "$NAMESPACE" >/dev/null 2>&1 ||
  "$KUBECTL" --context "$CONTEXT" create namespace "$NAMESPACE"

echo "==> applying redis/ and minio/"
k apply -k "${SCRIPT_DIR}/redis"
k apply -k "${SCRIPT_DIR}/minio"

echo "==> waiting for Redis and MinIO (timeout ${ROLLOUT_TIMEOUT})"
k rollout status statefulset/redis --timeout="$ROLLOUT_TIMEOUT"
k rollout status statefulset/minio --timeout="$ROLLOUT_TIMEOUT"
k wait --for=condition=complete job/minio-buckets --timeout="$ROLLOUT_TIMEOUT"

# Old forwards may point at pods that were just replaced: stop them and start fresh ones.
mkdir -p "$STATE_DIR"
stop_forwards

start_forward() {
  local name="$1"; shift
  local log="${STATE_DIR}/port-forward-${NAMESPACE}-${name}.log"
  nohup "$KUBECTL" --context "$CONTEXT" -n "$NAMESPACE" port-forward --address 127.0.0.1 "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  disown "$pid" 2>/dev/null || true
  echo "${name} ${pid}" >>"$PIDFILE"
  # Ready when kubectl says "Forwarding from"; a busy local port makes it exit at once.
  local _
  for _ in $(seq 1 50); do
    grep -q 'Forwarding from' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log" >&2
    die "port-forward ${name} exited (is the local port already in use? set REDIS_LOCAL_PORT / MINIO_LOCAL_PORT)"
  fi
}

echo "==> port-forwarding"
start_forward redis svc/redis "${REDIS_LOCAL_PORT}:6379"
start_forward minio svc/minio "${MINIO_LOCAL_PORT}:9000" "${MINIO_CONSOLE_LOCAL_PORT}:9001"

secret_value() {
  k get secret minio-credentials -o "jsonpath={.data.$1}" 2>/dev/null | base64 -d 2>/dev/null || true
}
ACCESS_KEY="$(secret_value MINIO_ROOT_USER)"
SECRET_KEY="$(secret_value MINIO_ROOT_PASSWORD)"

echo
echo "Port-forwards running in the background:"
while read -r name pid; do
  echo "  ${name}: pid ${pid} (log ${STATE_DIR}/port-forward-${NAMESPACE}-${name}.log)"
done <"$PIDFILE"
cat <<EOF

  Redis          redis://127.0.0.1:${REDIS_LOCAL_PORT}
  MinIO S3 API   http://127.0.0.1:${MINIO_LOCAL_PORT}
  MinIO console  http://127.0.0.1:${MINIO_CONSOLE_LOCAL_PORT}

Run the services locally against them:
  REDIS_URL=redis://127.0.0.1:${REDIS_LOCAL_PORT} MINIO_ENDPOINT=127.0.0.1 MINIO_PORT=${MINIO_LOCAL_PORT} MINIO_USE_SSL=false \\
  MINIO_ACCESS_KEY=${ACCESS_KEY:-<MINIO_ROOT_USER>} MINIO_SECRET_KEY=${SECRET_KEY:-<MINIO_ROOT_PASSWORD>} npm start

Stop the port-forwards:  $0 --stop   (or: kill $(cut -d' ' -f2 "$PIDFILE" | tr '\n' ' '))
A port-forward ends when its pod restarts: run this script again to reconnect.
EOF

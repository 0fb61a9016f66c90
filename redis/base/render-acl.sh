#!/bin/sh
# Renders the Redis ACL file: render-acl.sh <template> <output>.
# Comment and blank lines are dropped; every {{VAR}} becomes "#<sha256 of $VAR>", so the file Redis
# reads holds no password. A VAR that is unset, shorter than 16 characters or not URL-safe
# (A-Z a-z 0-9 . _ ~ -; the services put it into REDIS_URL) stops the pod with a message naming it.
# Run by the redis StatefulSet's init container, and by test/k8s/redis-acl.test.ts.
set -eu
template="$1"
out="$2"
umask 077
src="${out}.src"
tmp="${out}.tmp"
trap 'rm -f "$src" "$tmp"' EXIT
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$template" >"$src" || true
: >"$tmp"
while IFS= read -r line; do
  while :; do
    case "$line" in
      *'{{'*'}}'*) ;;
      *) break ;;
    esac
    name="${line#*\{\{}"
    name="${name%%\}\}*}"
    case "$name" in
      '' | *[!A-Z0-9_]*)
        echo "render-acl: bad placeholder {{${name}}} in ${template}" >&2
        exit 1
        ;;
    esac
    eval "value=\${${name}:-}"
    if [ -z "$value" ]; then
      echo "render-acl: ${name} is not set (a key of the Secret redis-users)" >&2
      exit 1
    fi
    case "$value" in
      *[!A-Za-z0-9._~-]*)
        echo "render-acl: ${name} has characters that are not URL-safe (use e.g. openssl rand -hex 24)" >&2
        exit 1
        ;;
    esac
    if [ "${#value}" -lt 16 ]; then
      echo "render-acl: ${name} is shorter than 16 characters" >&2
      exit 1
    fi
    hash="$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)"
    line="$(printf '%s\n' "$line" | sed "s/{{${name}}}/#${hash}/g")"
  done
  printf '%s\n' "$line" >>"$tmp"
done <"$src"
mv "$tmp" "$out"
echo "render-acl: wrote $(wc -l <"$out") users to ${out}"

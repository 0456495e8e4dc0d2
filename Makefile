# bgplb — see README.md. Every target works on a fresh clone; `make test` and
# `make demo` install or build what they need (see hack/).

SHELL := /usr/bin/env bash -o pipefail
GO ?= go
BIN ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Packages of the unit layer: everything but the envtest, lab and e2e suites.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /test/envtest -e /test/e2e -e '/test/lab$$' -e /test/lab/)
ENVTEST_ASSETS = export KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)"
GINKGO_FLAGS ?= -ginkgo.v=false
# First line of each phase of `make test`: its name and the time, so a log
# shows how long every phase took.
PHASE = @echo "== $$(date -u +%FT%TZ) make $@"

.PHONY: all build lint test test-unit test-unit-envtest test-envtest test-lab test-e2e verify-generated manifests generate fmt vet \
	envtest-assets lab-deps image demo bench-ipam bench-speaker bench-speaker-change bench-announce bench-l2 clean help

all: build

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/bgplb (static).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bgplb ./cmd/bgplb

manifests: ## Regenerate CRDs and RBAC from the markers in api/ and controllers/.
	$(GO) tool controller-gen crd paths=./api/... output:crd:dir=config/crd/bases
	$(GO) tool controller-gen rbac:roleName=bgplb-controller paths=./controllers/ipam/... paths=./controllers/peerstatus/... output:rbac:dir=config/rbac/controller
	$(GO) tool controller-gen rbac:roleName=bgplb-speaker paths=./controllers/speaker/... paths=./controllers/l2mode/... output:rbac:dir=config/rbac/speaker
	@$(MAKE) --no-print-directory chart-sync

generate: ## Regenerate deepcopy code.
	$(GO) tool controller-gen object paths=./api/...

fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')

vet: ## go vet every package.
	$(GO) vet ./...

verify-generated: ## Fail if generated files (CRDs, RBAC, deepcopy, the chart's copies) are stale.
	@files="config/crd/bases config/rbac/controller/role.yaml config/rbac/speaker/role.yaml api/v1alpha1/zz_generated.deepcopy.go $(CHART)/crds $(CHART)/files/rbac"; \
	before=$$(find $$files -type f 2>/dev/null | sort | xargs cat 2>/dev/null | sha256sum); \
	$(MAKE) --no-print-directory manifests generate >/dev/null; \
	after=$$(find $$files -type f 2>/dev/null | sort | xargs cat 2>/dev/null | sha256sum); \
	if [[ "$$before" != "$$after" ]]; then \
		echo "verify-generated: generated files were stale and have been regenerated; review and commit them:"; \
		git status --short -- $$files; exit 1; \
	fi; echo "verify-generated: generated files are up to date"

envtest-assets: ## Build (once) and print the envtest binaries' directory.
	@hack/envtest-assets.sh

lab-deps: ## Install what the lab needs (FRR, iproute2, ping) when root; say what to run otherwise.
	@hack/lab-deps.sh

test: verify-generated vet test-lab ## Unit, lint, envtest, netns-lab and real-node cluster suites (LAB=skip skips the lab and cluster by hand).
	@# lint, unit and envtest run in the cluster suite's five-minute API
	@# outage (hack/beside.sh), or after it when it has none.
	@hack/beside.sh '$(MAKE) --no-print-directory test-unit-envtest' $(MAKE) --no-print-directory test-cluster

# lint and the unit tests run beside the envtest suites, which mostly wait
# on their API servers; each line says which side printed it. `make test`
# runs this in the cluster suite's API outage (see test above).
test-unit-envtest: ## lint + test-unit, and test-envtest beside them.
	@( $(MAKE) --no-print-directory lint test-unit 2>&1 | sed -u 's/^/[unit] /' ) & unit=$$!; \
	( $(MAKE) --no-print-directory test-envtest 2>&1 | sed -u 's/^/[envtest] /' ) & envtest=$$!; \
	wait $$unit; u=$$?; wait $$envtest; e=$$?; \
	if [[ $$u != 0 || $$e != 0 ]]; then echo "test-unit-envtest: lint+unit exit $$u, envtest exit $$e"; exit 1; fi

# golangci-lint lives in its own module (hack/tools/go.mod) so its ~350
# modules stay out of bgplb's dependency graph; `go tool` caches the built
# binary in the Go build cache.
GOLANGCI_LINT = $(GO) tool -modfile=hack/tools/go.mod golangci-lint

lint: ## golangci-lint with .golangci.yml, then the project's own checks (hack/lint: no hand-formatted JSON).
	$(PHASE)
	$(GOLANGCI_LINT) run ./...
	$(GO) test -count=1 ./hack/lint/
	@$(MAKE) --no-print-directory lint-chart

# The Helm chart (charts/bgplb). Helm v4 is a tool of its own module
# (hack/helm/go.mod), like golangci-lint; see docs/helm.md for why v4.
CHART = charts/bgplb
HELM = $(GO) tool -modfile=hack/helm/go.mod helm

.PHONY: lint-chart chart-sync
lint-chart: ## helm lint + render of charts/bgplb (defaults and every option), and its tests: same objects as config/default.
	$(PHASE)
	$(HELM) lint --strict $(CHART) --namespace bgplb-system
	$(HELM) lint --strict $(CHART) --namespace bgplb-system -f hack/helm/testdata/all-options.yaml
	$(HELM) template bgplb $(CHART) --namespace bgplb-system --include-crds >/dev/null
	cd hack/helm && GOWORK=off $(GO) test -count=1 ./...

chart-sync: ## Copy the generated CRDs and RBAC roles, and the frr-k8s component's RBAC, into charts/bgplb (make manifests runs it; verify-generated checks it).
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/controller/role.yaml $(CHART)/files/rbac/controller-role.yaml
	cp config/rbac/speaker/role.yaml $(CHART)/files/rbac/speaker-role.yaml
	cp config/components/frr-k8s/rbac.yaml $(CHART)/files/rbac/frr-k8s-rbac.yaml

test-unit: ## Unit tests, fuzz seeds and component tests (no root needed).
	$(PHASE)
	$(GO) test -count=1 $(UNIT_PKGS)
	cd hack/image && GOWORK=off $(GO) test -count=1 .
	cd hack/metallbapi && GOWORK=off $(GO) test -count=1 .

test-envtest: ## Ginkgo suites against a real kube-apiserver + etcd.
	$(PHASE)
	$(ENVTEST_ASSETS) && $(GO) test -count=1 -timeout 20m ./test/envtest/... $(GINKGO_FLAGS)

# The e2e suite runs once per BGP backend of the speakers, each on a lab of
# its own: gobgp runs every spec; frr-k8s (real FRR and frr-k8s's own
# controller, reloader and status exporter in every node) the specs
# labelled bgp (test/e2e/backend_test.go says why the others are not run).
LAB_BACKENDS ?= gobgp frr-k8s

test-lab: ## The network-namespace lab and its e2e specs, once per BGP backend (LAB_BACKENDS) (needs root, FRR, frr-pythontools, iproute2, ping).
	$(PHASE)
	@if [[ "$${LAB:-}" == "skip" ]]; then echo "test-lab: LAB=skip set by hand: NOT running the lab suites"; exit 0; fi; \
	hack/lab-deps.sh --check && $(MAKE) --no-print-directory build && \
	$(ENVTEST_ASSETS) && export BGPLB_BIN=$(CURDIR)/$(BIN)/bgplb && \
	$(GO) test -count=1 -timeout 20m ./test/lab/... && \
	for b in $(LAB_BACKENDS); do \
		echo "== $$(date -u +%FT%TZ) test-lab: e2e suite, $$b backend"; \
		BGPLB_LAB_BACKEND=$$b $(GO) test -count=1 -timeout 30m ./test/e2e/... $(GINKGO_FLAGS) || exit 1; \
	done

IMAGE ?= ghcr.io/bgplb/bgplb:$(VERSION)
image: build ## Build bin/bgplb-image.tar, an OCI image of the static binary (no Docker engine needed).
	cd hack/image && GOWORK=off $(GO) run . -binary $(CURDIR)/$(BIN)/bgplb -out $(CURDIR)/$(BIN)/bgplb-image.tar -tag $(IMAGE)

demo: demo-cluster ## The demo on a real-node Kubernetes cluster (= demo-cluster; the netns-only lab demo is demo-lab); Ctrl-C tears it down (root).

demo-lab: ## Run bgplb on the netns lab (FRR routers, node namespaces without kubelets, client) with a demo Service; Ctrl-C tears it down (root).
	@hack/lab-deps.sh --check
	@$(MAKE) --no-print-directory build
	@# The lab command is test tooling (test/lab/cmd/bgplb-lab), not part of bin/bgplb.
	@# No -trimpath: it finds config/ (CRDs, RBAC, samples) from its source paths.
	CGO_ENABLED=0 $(GO) build -o $(BIN)/bgplb-lab ./test/lab/cmd/bgplb-lab
	@$(ENVTEST_ASSETS) && exec $(BIN)/bgplb-lab demo -bin $(BIN)/bgplb

bench-announce: ## Lab benchmark: Service -> route latency for both BGP backends side by side (GoBGP, frr-k8s), and with GoBGP a burst of 1,000 (BGPLB_BENCH_BURST) with memory, failover with and without BFD (root); prints figures.
	@hack/lab-deps.sh --check
	@$(MAKE) --no-print-directory build
	$(ENVTEST_ASSETS) && BGPLB_BIN=$(CURDIR)/$(BIN)/bgplb $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/announce/

bench-l2: ## Lab benchmark: L2 failover (frozen speaker, link down -> first new TCP connection served by another node), median and max of 10 (root); prints figures.
	@hack/lab-deps.sh --check
	@$(MAKE) --no-print-directory build
	$(ENVTEST_ASSETS) && BGPLB_BIN=$(CURDIR)/$(BIN)/bgplb BGPLB_BENCH_L2=1 $(GO) test -v -count=1 -timeout 30m ./test/e2e/ -ginkgo.label-filter=bench-l2 -ginkgo.v=false | grep -E "bench-l2: |^(ok|FAIL|--- )|FAIL"

# Services created by bench-ipam.
N ?= 1000

bench-ipam: build ## IPAM benchmark: N Services (default 1000) vs the API server's ceiling; prints one line of figures.
	$(ENVTEST_ASSETS) && $(GO) run ./test/bench/ipam -n $(N) -bin $(BIN)/bgplb

# Extra speaker flags for bench-speaker, e.g. SPEAKER_ARGS=--l2-heartbeat-port=17947 (L2 mode on).
SPEAKER_ARGS ?=

bench-speaker: build ## Speaker benchmark: one node's speaker with N Services (default 1000): burst, CPU per change, memory; prints one line of figures.
	$(ENVTEST_ASSETS) && $(GO) run ./test/bench/speaker -n $(N) -bin $(BIN)/bgplb -speaker-args '$(SPEAKER_ARGS)'

bench-speaker-change: ## Go benchmark: speaker CPU for one Service change on top of 1k/10k/100k Services (in-memory stores, real embedded GoBGP); prints figures.
	$(GO) test -count=1 -run '^$$' -bench ServiceChange -benchtime 150000x -timeout 30m ./controllers/speaker/

clean: ## Remove build output.
	rm -rf $(BIN)

# Real-node cluster (test/cluster), see README.
# Kubernetes binaries come from hack/cluster-assets.sh (built from the Go
# module proxy once, cached); images from hack/image (no Docker engine).

CLUSTER_IMAGE ?= ghcr.io/bgplb/bgplb:e2e
CLUSTER_BIN = $(BIN)/cluster
CLUSTER_ASSETS = export BGPLB_CLUSTER_ASSETS="$$(hack/cluster-assets.sh)"
DEMO_FLAGS ?=
# Specs labelled known-issue (reported product issues; none today) are left out; CLUSTER_GINKGO_FLAGS= runs them too.
CLUSTER_GINKGO_FLAGS ?= -ginkgo.label-filter=!known-issue

.PHONY: cluster-assets cluster-images demo-cluster demo-lab cluster-cleanup test-cluster

cluster-assets: ## Build (once) and print the dir of kubelet, kube-proxy, kube-controller-manager, kube-scheduler, kubectl (v1.37.2).
	@hack/cluster-assets.sh

cluster-images: build ## Build bin/cluster/{bgplb,pause,backend}-image.tar for the real-node cluster (OCI tarballs, no Docker).
	@mkdir -p $(CLUSTER_BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(CLUSTER_BIN)/pause ./test/cluster/images/pause
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(CLUSTER_BIN)/backend ./test/cluster/images/backend
	cd hack/image && GOWORK=off $(GO) run . -binary $(CURDIR)/$(BIN)/bgplb -out $(CURDIR)/$(CLUSTER_BIN)/bgplb-image.tar -tag $(CLUSTER_IMAGE)
	cd hack/image && GOWORK=off $(GO) run . -binary $(CURDIR)/$(CLUSTER_BIN)/pause -name pause -user 65535:65535 -out $(CURDIR)/$(CLUSTER_BIN)/pause-image.tar -tag localhost/bgplb/pause:1
	cd hack/image && GOWORK=off $(GO) run . -binary $(CURDIR)/$(CLUSTER_BIN)/backend -name backend -out $(CURDIR)/$(CLUSTER_BIN)/backend-image.tar -tag localhost/bgplb/backend:1

demo-cluster: ## The demo on a real-node cluster: kubelets, containerd, kube-proxy, pods; bgplb by kubectl apply -k; Ctrl-C tears it down (root).
	@hack/lab-deps.sh --cluster --check
	@$(MAKE) --no-print-directory cluster-images
	@# No -trimpath: the harness finds config/ and the overlay from its source paths.
	CGO_ENABLED=0 $(GO) build -o $(BIN)/bgplb-cluster ./test/cluster/cmd/bgplb-cluster
	@$(CLUSTER_ASSETS) && exec $(BIN)/bgplb-cluster demo $(DEMO_FLAGS)

cluster-cleanup: ## Remove what a crashed real-node cluster left (processes, containers, mounts, cgroups, namespaces) (root).
	CGO_ENABLED=0 $(GO) build -o $(BIN)/bgplb-cluster ./test/cluster/cmd/bgplb-cluster
	$(BIN)/bgplb-cluster cleanup

test-cluster: ## e2e specs on the real-node cluster (test/cluster/e2e: kubelets, containerd, kube-proxy, pods; bgplb by kubectl apply -k) (root).
	$(PHASE)
	@if [[ "$${LAB:-}" == "skip" ]]; then echo "test-cluster: LAB=skip set by hand: NOT running the real-node cluster suite"; exit 0; fi; \
	hack/lab-deps.sh --cluster --check && $(MAKE) --no-print-directory cluster-images && \
	$(CLUSTER_ASSETS) && BGPLB_CLUSTER_E2E=1 $(GO) test -v -count=1 -timeout 40m ./test/cluster/e2e/ -ginkgo.v $(CLUSTER_GINKGO_FLAGS)

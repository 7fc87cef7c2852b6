# The README's commands. `make test` is also what CI runs (.ci/run).

# Test tools installed with `go install` (versitygw, golangci-lint) live here.
export PATH := $(shell go env GOPATH)/bin:$(PATH)
.PHONY: run build test test-unit test-race vet lint lint-deps check-proto check-mod check-dashboards test-helm test-deps proto docs dashboards cluster bench

GOLANGCI_LINT_VERSION := v2.15.0
# Every package but integration/, whose tests start real processes.
UNIT_PACKAGES = $(shell go list ./... | grep -v '^github.com/strata-metrics/strata/integration')

run:
	go run ./cmd/strata

# Build information stamped into the binary (pkg/version, shown by `strata -version` and buildinfo). Each
# variable can be given to make or in the environment instead (make build VERSION=v1.2.3), as a Docker
# build without .git would.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/strata-metrics/strata/pkg/version
GO_LDFLAGS = -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

build:
	go build -ldflags "$(GO_LDFLAGS)" -o strata ./cmd/strata

# Unit tests, fuzz seeds, and the integration tests that start real strata and prometheus processes. The
# integration tests build the strata binary themselves, which go test's cache cannot see: they always run.
# They also build a current Prometheus (integration/prometheus), 6-8 minutes cold on 2 cores: hence the
# timeout above go test's default 10 minutes.
test: test-deps check-dashboards
	go test $(UNIT_PACKAGES)
	go test -count=1 -timeout 30m ./integration/
	$(MAKE) test-helm

# The Helm chart (production/helm/strata) without a cluster: helm lint and helm template for the default
# and every example values file, each manifest decoded strictly with the Kubernetes API types, and each
# Strata container's arguments checked by `strata -config.verify`. Its own module (helm's dependencies
# stay out of Strata's go.mod); the first build of helm takes several minutes on 2 cores, then ~1.
test-helm:
	cd production/helm/charttest && go test -count=1 -timeout 20m ./...

# The unit tests alone: no strata or prometheus processes (versitygw still serves the S3 client's tests).
test-unit: test-deps
	go test $(UNIT_PACKAGES)

# The unit tests under the race detector; CI runs it.
test-race: test-deps
	go test -race $(UNIT_PACKAGES)

# go vet without its io.Seeker check (stdmethods): it reports every Seek(int64) method, and the querier
# implements the TSDB's sample iterator, chunkenc.Iterator, whose Seek(int64) ValueType is not io.Seeker.
vet:
	go vet -stdmethods=false ./...

# go vet (as above), staticcheck, errcheck, unused, ineffassign and the import rule between components
# (depguard), configured in .golangci.yml.
lint: lint-deps
	golangci-lint run ./...

lint-deps:
	@golangci-lint version 2>/dev/null | grep -q "version $(GOLANGCI_LINT_VERSION:v%=%) " || \
		go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# The checked-in protobuf code is what scripts/genproto.sh makes from the .proto files.
check-proto:
	./scripts/check-proto.sh

# go.mod and go.sum are tidy, Strata's, the integration tests' Prometheus module's and the dashboard
# generator's.
check-mod:
	go mod tidy -diff
	cd integration/prometheus && go mod tidy -diff
	cd production/helm/charttest && go mod tidy -diff
	cd production/dashboards/gen && GOWORK=off go mod tidy -diff

# The committed dashboards are what their generator writes (its own module: the Grafana Foundation SDK stays
# out of Strata's go.mod), and the alerting rules load in promtool and pass their unit tests (each fires on
# its trouble). integration/dashboards_test.go runs every expression of both against a Strata that scrapes
# itself.
check-dashboards:
	@test -z "$$(gofmt -l production/dashboards/gen)" || { echo "gofmt needed on production/dashboards/gen" >&2; exit 1; }
	cd production/dashboards/gen && GOWORK=off go vet . && GOWORK=off go run . -check -out ..
	promtool check rules production/alerts/strata-alerts.yaml
	cd production/alerts && promtool test rules strata-alerts.test.yaml

# Debian's prometheus package (a real remote-write client), versitygw (a real S3 server), protoc, memcached
# and chromium (a headless browser for the query page's test).
test-deps:
	@(command -v prometheus && command -v versitygw && command -v protoc && command -v memcached && command -v chromium) >/dev/null 2>&1 || \
		./scripts/install-test-deps.sh

proto:
	./scripts/genproto.sh

docs:
	go run ./tools/configdocs -o docs/configuration.md

# Writes production/dashboards/*.json from production/dashboards/gen.
dashboards:
	cd production/dashboards/gen && GOWORK=off go run . -out ..

# 3 ingesters, 2 distributors, 2 queriers on this machine (docs/operations.md).
cluster:
	./production/local-cluster/run.sh

# Strata beside Prometheus and VictoriaMetrics under the same load (docs/benchmarks.md).
bench:
	./scripts/bench.sh

# The README's commands. `make test` is also what CI runs (.ci/run).

# Test tools installed with `go install` (versitygw) live here.
export PATH := $(shell go env GOPATH)/bin:$(PATH)
.PHONY: run build test vet test-deps proto docs cluster bench

run:
	go run ./cmd/strata

build:
	go build -o strata ./cmd/strata

# Unit tests, fuzz seeds, and the integration tests that start real strata and prometheus processes.
test: test-deps
	go test ./...

# go vet without its io.Seeker check (stdmethods): it reports every Seek(int64) method, and the querier
# implements the TSDB's sample iterator, chunkenc.Iterator, whose Seek(int64) ValueType is not io.Seeker.
vet:
	go vet -stdmethods=false ./...

# Debian's prometheus package (a real remote-write client) and versitygw (a real S3 server).
test-deps:
	@(command -v prometheus && command -v versitygw) >/dev/null 2>&1 || ./scripts/install-test-deps.sh

proto:
	./scripts/genproto.sh

docs:
	go run ./tools/configdocs > docs/configuration.md

# 3 ingesters, 2 distributors, 2 queriers on this machine (docs/operations.md).
cluster:
	./production/local-cluster/run.sh

# Strata beside Prometheus and VictoriaMetrics under the same load (docs/benchmarks.md).
bench:
	./scripts/bench.sh

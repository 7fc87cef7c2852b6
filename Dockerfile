# Strata's container image: a static binary on distroless, running as a non-root user.
#   docker build -t strata:dev --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) .
# The build context has no .git (.dockerignore), so the build information comes in as arguments.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=unknown
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_DATE=unknown
# CGO off: a static binary that needs no libc, which is what lets it run on distroless/static.
RUN CGO_ENABLED=0 make build VERSION="$VERSION" REVISION="$REVISION" BRANCH="$BRANCH" BUILD_DATE="$BUILD_DATE" && \
	CGO_ENABLED=0 go build -o stratatool ./cmd/stratatool && \
	mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/strata /bin/strata
COPY --from=build /src/stratatool /bin/stratatool
# The data directory belongs to the image's non-root user (65532); Kubernetes mounts a volume there.
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
# HTTP, gRPC, memberlist gossip.
EXPOSE 8080 9095 7946
ENTRYPOINT ["/bin/strata"]
CMD ["-data.dir=/data"]

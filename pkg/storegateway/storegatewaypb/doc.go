// Package storegatewaypb holds the store-gateway's gRPC service and messages (generated from
// storegateway.proto by scripts/genproto.sh) and their conversions to Prometheus types.
package storegatewaypb

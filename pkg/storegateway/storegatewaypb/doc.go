// Package storegatewaypb holds the store-gateway's gRPC service and messages, generated from
// storegateway.proto by scripts/genproto.sh. Labels, matchers and series are seriespb's.
package storegatewaypb

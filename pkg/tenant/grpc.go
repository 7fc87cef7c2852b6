package tenant

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// OrgIDMetadataKey is the gRPC metadata key that carries the tenant between Strata components. gRPC
// metadata keys are lowercase, so it is OrgIDHeader lowercased.
const OrgIDMetadataKey = "x-scope-orgid"

// Compile-time checks that the interceptors fit grpc.WithUnaryInterceptor, grpc.UnaryInterceptor etc.
var (
	_ grpc.UnaryClientInterceptor  = UnaryClientInterceptor
	_ grpc.StreamClientInterceptor = StreamClientInterceptor
	_ grpc.UnaryServerInterceptor  = UnaryServerInterceptor
	_ grpc.StreamServerInterceptor = StreamServerInterceptor
)

// UnaryClientInterceptor copies the tenant in ctx into the call's outgoing metadata. A call without a
// tenant goes out unchanged, so tenant-less calls (health checks) work through the same connection; a
// server that requires a tenant rejects it with codes.Unauthenticated.
func UnaryClientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(outgoingContext(ctx), method, req, reply, cc, opts...)
}

// StreamClientInterceptor is UnaryClientInterceptor for streaming calls.
func StreamClientInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(outgoingContext(ctx), desc, cc, method, opts...)
}

// outgoingContext sets (not appends) the tenant key, so a context that already carries outgoing metadata
// from an earlier hop never sends two tenants.
func outgoingContext(ctx context.Context) context.Context {
	id, err := FromContext(ctx)
	if err != nil {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		return metadata.AppendToOutgoingContext(ctx, OrgIDMetadataKey, id)
	}
	md.Set(OrgIDMetadataKey, id)
	return metadata.NewOutgoingContext(ctx, md)
}

// UnaryServerInterceptor reads the tenant from the incoming x-scope-orgid metadata, validates it and puts
// it into the handler's context. A call without a tenant fails with codes.Unauthenticated, one with an
// invalid tenant with codes.InvalidArgument; the handler is not called for either.
func UnaryServerInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	ctx, err := incomingContext(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls: the handler's stream returns the
// context carrying the tenant.
func StreamServerInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	ctx, err := incomingContext(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, &tenantServerStream{ServerStream: ss, ctx: ctx})
}

func incomingContext(ctx context.Context) (context.Context, error) {
	values := metadata.ValueFromIncomingContext(ctx, OrgIDMetadataKey)
	switch len(values) {
	case 0:
		return nil, status.Errorf(codes.Unauthenticated,
			"%s: set the %s gRPC metadata (tenant.UnaryClientInterceptor does it from the context)",
			ErrNoTenant, OrgIDMetadataKey)
	case 1:
	default:
		return nil, status.Errorf(codes.InvalidArgument,
			"the %s gRPC metadata has %d values, send one tenant ID", OrgIDMetadataKey, len(values))
	}
	if err := ValidateID(values[0]); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return NewContext(ctx, values[0]), nil
}

// tenantServerStream overrides Context so streaming handlers see the tenant.
type tenantServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tenantServerStream) Context() context.Context { return s.ctx }

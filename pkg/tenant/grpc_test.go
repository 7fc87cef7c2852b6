package tenant_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strata-metrics/strata/pkg/tenant"
)

const (
	echoService      = "strata.tenanttest.Echo"
	echoUnaryMethod  = "/" + echoService + "/Tenant"
	echoStreamMethod = "/" + echoService + "/TenantStream"
)

// echoTenantFromContext is what both test RPCs answer: the tenant the server interceptor put in ctx.
func echoTenantFromContext(ctx context.Context) (*wrapperspb.StringValue, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return wrapperspb.String(id), nil
}

// echoServiceDesc is a hand-written service (no generated code needed) with one unary and one
// server-streaming RPC that answer the tenant seen by the handler.
var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: echoService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Tenant",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.StringValue)); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, _ any) (any, error) { return echoTenantFromContext(ctx) }
			if interceptor == nil {
				return handler(ctx, nil)
			}
			return interceptor(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: echoUnaryMethod}, handler)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "TenantStream",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(new(wrapperspb.StringValue)); err != nil {
				return err
			}
			out, err := echoTenantFromContext(stream.Context())
			if err != nil {
				return err
			}
			return stream.SendMsg(out)
		},
	}},
}

// startServer runs a gRPC server with the tenant server interceptors on 127.0.0.1 and returns a client
// connection that uses the tenant client interceptors.
func startServer(t *testing.T) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(tenant.UnaryServerInterceptor),
		grpc.StreamInterceptor(tenant.StreamServerInterceptor),
	)
	srv.RegisterService(&echoServiceDesc, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor),
		grpc.WithStreamInterceptor(tenant.StreamClientInterceptor),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func callUnary(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, echoUnaryMethod, wrapperspb.String(""), out)
	return out.GetValue(), err
}

func callStream(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	stream, err := conn.NewStream(ctx, &echoServiceDesc.Streams[0], echoStreamMethod)
	if err != nil {
		return "", err
	}
	if err := stream.SendMsg(wrapperspb.String("")); err != nil {
		return "", err
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	out := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(out); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

func TestGRPCInterceptors(t *testing.T) {
	conn := startServer(t)
	ctx := t.Context()

	tests := []struct {
		name     string
		ctx      context.Context
		wantID   string
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "tenant from context", ctx: tenant.NewContext(ctx, "team-a"), wantID: "team-a"},
		{name: "context tenant replaces stale outgoing metadata",
			ctx:    tenant.NewContext(metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, "old", "other", "kept"), "team-b"),
			wantID: "team-b"},
		{name: "metadata set directly without the client interceptor's help",
			ctx: metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, "team-c"), wantID: "team-c"},
		{name: "no tenant", ctx: ctx, wantCode: codes.Unauthenticated,
			wantMsg: "no tenant ID: set the x-scope-orgid gRPC metadata"},
		{name: "invalid tenant", ctx: metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, "a/b"),
			wantCode: codes.InvalidArgument, wantMsg: "tenant ID contains unsupported character '/'"},
		{name: "dot dot tenant", ctx: metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, ".."),
			wantCode: codes.InvalidArgument, wantMsg: `tenant ID ".." is not allowed`},
		{name: "too long tenant", ctx: tenant.NewContext(ctx, strings.Repeat("a", 151)),
			wantCode: codes.InvalidArgument, wantMsg: "tenant ID is 151 bytes, at most 150 are allowed"},
		{name: "two tenants", ctx: metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, "a", tenant.OrgIDMetadataKey, "b"),
			wantCode: codes.InvalidArgument, wantMsg: "the x-scope-orgid gRPC metadata has 2 values"},
	}
	for _, tc := range tests {
		for kind, call := range map[string]func(context.Context, *grpc.ClientConn) (string, error){
			"unary": callUnary, "stream": callStream,
		} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				id, err := call(tc.ctx, conn)
				if tc.wantCode == codes.OK {
					require.NoError(t, err)
					require.Equal(t, tc.wantID, id)
					return
				}
				st, ok := status.FromError(err)
				require.True(t, ok, "not a gRPC status: %v", err)
				require.Equal(t, tc.wantCode, st.Code(), st.Message())
				require.Contains(t, st.Message(), tc.wantMsg)
			})
		}
	}
}

// TestUnaryClientInterceptor_PassesThroughWithoutTenant shows that the client interceptor does not get in
// the way of tenant-less calls; here the server requires a tenant, so the call is refused there.
func TestUnaryClientInterceptor_PassesThroughWithoutTenant(t *testing.T) {
	conn := startServer(t)
	_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	resp, err := healthpb.NewHealthClient(conn).Check(tenant.NewContext(t.Context(), "team-a"), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
}

func TestUnaryClientInterceptor_SetsMetadata(t *testing.T) {
	var got metadata.MD
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		got, _ = metadata.FromOutgoingContext(ctx)
		return nil
	}
	ctx := metadata.AppendToOutgoingContext(tenant.NewContext(t.Context(), "team-a"), "trace", "1")
	require.NoError(t, tenant.UnaryClientInterceptor(ctx, "/x/Y", nil, nil, nil, invoker))
	require.Equal(t, []string{"team-a"}, got.Get(tenant.OrgIDMetadataKey))
	require.Equal(t, []string{"1"}, got.Get("trace"))
}

package tenant_test

// These tests pin Strata's tenant propagation to the wire convention of github.com/weaveworks/common/user,
// which Cortex, Loki, Tempo and older Mimir clients use: a request tagged by their code must reach Strata
// as the same tenant, and a request tagged by Strata must read back as that tenant in theirs. The runtime
// does not import weaveworks/common (see docs/architecture.md), so only these tests keep the two in step.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/weaveworks/common/user"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// weaveworksUnaryClient and weaveworksStreamClient tag outgoing calls the way Cortex's client
// interceptors do: with user.InjectIntoGRPCRequest on a context made by user.InjectOrgID.
func weaveworksUnaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, err := user.InjectIntoGRPCRequest(ctx)
	if err != nil {
		return err
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func weaveworksStreamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, err := user.InjectIntoGRPCRequest(ctx)
	if err != nil {
		return nil, err
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// weaveworksUnaryServer and weaveworksStreamServer read the tenant the way Cortex's server interceptors
// do, with user.ExtractFromGRPCRequest, so the handler finds it with user.ExtractOrgID.
func weaveworksUnaryServer(ctx context.Context, req any, _ *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	_, ctx, err := user.ExtractFromGRPCRequest(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return handler(ctx, req)
}

func weaveworksStreamServer(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	_, ctx, err := user.ExtractFromGRPCRequest(ss.Context())
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// weaveworksEchoService answers the same RPCs as echoServiceDesc (so callUnary and callStream work with
// it), but its handlers read the tenant with user.ExtractOrgID instead of tenant.FromContext.
var weaveworksEchoService = grpc.ServiceDesc{
	ServiceName: echoService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Tenant",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.StringValue)); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, _ any) (any, error) { return weaveworksTenant(ctx) }
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
			out, err := weaveworksTenant(stream.Context())
			if err != nil {
				return err
			}
			return stream.SendMsg(out)
		},
	}},
}

func weaveworksTenant(ctx context.Context) (*wrapperspb.StringValue, error) {
	id, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return wrapperspb.String(id), nil
}

// serveGRPC runs srv on 127.0.0.1 and returns a connection to it built with dialOpts.
func serveGRPC(t *testing.T, srv *grpc.Server, dialOpts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

var grpcCalls = map[string]func(context.Context, *grpc.ClientConn) (string, error){
	"unary": callUnary, "stream": callStream,
}

func TestGRPC_WeaveworksClientToStrataServer(t *testing.T) {
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(tenant.UnaryServerInterceptor),
		grpc.StreamInterceptor(tenant.StreamServerInterceptor),
	)
	srv.RegisterService(&echoServiceDesc, struct{}{})
	// Only weaveworks' side tags the call: Strata's client interceptors are not on this connection.
	conn := serveGRPC(t, srv,
		grpc.WithUnaryInterceptor(weaveworksUnaryClient),
		grpc.WithStreamInterceptor(weaveworksStreamClient),
	)

	tests := []struct {
		name     string
		ctx      func(context.Context) context.Context
		wantID   string
		wantCode codes.Code
	}{
		{name: "tenant", ctx: func(ctx context.Context) context.Context { return user.InjectOrgID(ctx, "team-a") },
			wantID: "team-a"},
		{name: "all special characters",
			ctx:    func(ctx context.Context) context.Context { return user.InjectOrgID(ctx, "!-_.*'()") },
			wantID: "!-_.*'()"},
		{name: "beside other outgoing metadata", ctx: func(ctx context.Context) context.Context {
			return user.InjectOrgID(metadata.AppendToOutgoingContext(ctx, "trace", "1"), "team-b")
		}, wantID: "team-b"},
		{name: "injected before the call, as a Cortex client without interceptors does",
			ctx: func(ctx context.Context) context.Context {
				ctx, err := user.InjectIntoGRPCRequest(user.InjectOrgID(ctx, "team-c"))
				require.NoError(t, err)
				return ctx
			}, wantID: "team-c"},
		// weaveworks accepts any string; Strata still validates what arrives.
		{name: "invalid for Strata",
			ctx:      func(ctx context.Context) context.Context { return user.InjectOrgID(ctx, "a/b") },
			wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		for kind, call := range grpcCalls {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				id, err := call(tc.ctx(t.Context()), conn)
				if tc.wantCode != codes.OK {
					require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
					return
				}
				require.NoError(t, err)
				require.Equal(t, tc.wantID, id)
			})
		}
	}
}

func TestGRPC_StrataClientToWeaveworksServer(t *testing.T) {
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(weaveworksUnaryServer),
		grpc.StreamInterceptor(weaveworksStreamServer),
	)
	srv.RegisterService(&weaveworksEchoService, struct{}{})
	conn := serveGRPC(t, srv,
		grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor),
		grpc.WithStreamInterceptor(tenant.StreamClientInterceptor),
	)

	tests := []struct {
		name   string
		ctx    func(context.Context) context.Context
		wantID string
	}{
		{name: "tenant", ctx: func(ctx context.Context) context.Context { return tenant.NewContext(ctx, "team-a") },
			wantID: "team-a"},
		{name: "beside other outgoing metadata", ctx: func(ctx context.Context) context.Context {
			return tenant.NewContext(metadata.AppendToOutgoingContext(ctx, "trace", "1"), "team-b")
		}, wantID: "team-b"},
		// weaveworks refuses a call carrying two tenants; Strata's interceptor replaces a stale one.
		{name: "replaces a stale tenant from an earlier hop", ctx: func(ctx context.Context) context.Context {
			return tenant.NewContext(metadata.AppendToOutgoingContext(ctx, tenant.OrgIDMetadataKey, "old"), "team-c")
		}, wantID: "team-c"},
	}
	for _, tc := range tests {
		for kind, call := range grpcCalls {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				id, err := call(tc.ctx(t.Context()), conn)
				require.NoError(t, err)
				require.Equal(t, tc.wantID, id)
			})
		}
	}

	t.Run("no tenant", func(t *testing.T) {
		_, err := callUnary(t.Context(), conn)
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	})
}

func TestHTTP_WeaveworksClientToStrataMiddleware(t *testing.T) {
	srv := httptest.NewServer(tenant.Middleware(true)(echoTenant))
	t.Cleanup(srv.Close)

	for _, id := range []string{"team-a", "!-_.*'()"} {
		t.Run(id, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/push", nil)
			require.NoError(t, err)
			require.NoError(t, user.InjectOrgIDIntoHTTPRequest(user.InjectOrgID(t.Context(), id), req))

			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Equal(t, id, string(body))
		})
	}
}

func TestHTTP_StrataHeaderToWeaveworksServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ctx, err := user.ExtractOrgIDFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		id, err := user.ExtractOrgID(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, id)
	}))
	t.Cleanup(srv.Close)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, "team-a")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "team-a", string(body))
}

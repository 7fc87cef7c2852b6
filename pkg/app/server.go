package app

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-metrics/strata/pkg/auth"
	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/tlsconfig"
	"github.com/strata-metrics/strata/pkg/util/refusals"
)

// ServerConfig configures the HTTP and gRPC servers every component shares.
type ServerConfig struct {
	HTTPListenAddress       string
	HTTPListenPort          int
	GRPCListenAddress       string
	GRPCListenPort          int
	GracefulShutdownTimeout time.Duration
	HTTPServerReadTimeout   time.Duration
	HTTPServerWriteTimeout  time.Duration
	HTTPServerIdleTimeout   time.Duration
	GRPCMaxRecvMsgSize      int
	GRPCMaxSendMsgSize      int
	Refusals                refusals.Config
	HTTPTLS                 tlsconfig.ServerConfig
	GRPCTLS                 tlsconfig.ServerConfig
	TLS                     tlsconfig.Common
}

// RegisterFlags registers the servers' flags.
func (c *ServerConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP server listen address; empty means all interfaces.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 8080, "HTTP server listen port.")
	f.StringVar(&c.GRPCListenAddress, "server.grpc-listen-address", "", "gRPC server listen address; empty means all interfaces.")
	f.IntVar(&c.GRPCListenPort, "server.grpc-listen-port", 9095, "gRPC server listen port.")
	f.DurationVar(&c.GracefulShutdownTimeout, "server.graceful-shutdown-timeout", 30*time.Second, "How long shutdown waits for in-flight requests.")
	f.DurationVar(&c.HTTPServerReadTimeout, "server.http-server-read-timeout", 30*time.Second, "Longest time to read a whole HTTP request, headers and body; a client that sends slower has its connection closed.")
	f.DurationVar(&c.HTTPServerWriteTimeout, "server.http-server-write-timeout", 150*time.Second, "Longest time from the end of a request's headers to the end of its response. Longer than -querier.timeout (2m by default) so a long query's answer still gets through; raise both together.")
	f.DurationVar(&c.HTTPServerIdleTimeout, "server.http-server-idle-timeout", 120*time.Second, "Longest time an idle keep-alive HTTP connection stays open.")
	f.IntVar(&c.GRPCMaxRecvMsgSize, "server.grpc-max-recv-msg-size-bytes", 100<<20, "Largest gRPC message the server accepts.")
	f.IntVar(&c.GRPCMaxSendMsgSize, "server.grpc-max-send-msg-size-bytes", 100<<20, "Largest gRPC message the server sends.")
	c.Refusals.RegisterFlags(f)
	tlsconfig.RegisterServerCommonFlags(&c.TLS, f)
	c.HTTPTLS.RegisterFlagsWithPrefix("server.http-", "HTTP", &c.TLS, f)
	c.GRPCTLS.RegisterFlagsWithPrefix("server.grpc-", "gRPC", &c.TLS, f)
}

// Validate checks the configuration.
func (c *ServerConfig) Validate() error {
	if c.HTTPListenPort < 0 || c.HTTPListenPort > 65535 || c.GRPCListenPort < 0 || c.GRPCListenPort > 65535 {
		return errors.New("listen ports must be between 0 and 65535")
	}
	if c.HTTPServerReadTimeout <= 0 || c.HTTPServerWriteTimeout <= 0 || c.HTTPServerIdleTimeout <= 0 {
		return errors.New("-server.http-server-read-timeout, -server.http-server-write-timeout and -server.http-server-idle-timeout must be positive: without them a client can hold a connection, and the memory of its request, forever")
	}
	if err := c.Refusals.Validate(); err != nil {
		return err
	}
	if err := c.HTTPTLS.Validate(); err != nil {
		return err
	}
	return c.GRPCTLS.Validate()
}

// server runs the HTTP and gRPC servers. Listeners are opened when it is built, so the gRPC port is known
// before the ingester registers its address in the ring.
type server struct {
	cfg          ServerConfig
	logger       *slog.Logger
	mux          *http.ServeMux
	httpServer   *http.Server
	grpcServer   *grpc.Server
	httpListener net.Listener
	grpcListener net.Listener
	health       *health.Server
	authn        *auth.Authenticator
}

func newServer(cfg ServerConfig, authn *auth.Authenticator, throttle *refusals.Throttle, logger *slog.Logger) (*server, error) {
	// The files are read before listening, so a bad certificate fails the start rather than each handshake.
	httpTLS, err := cfg.HTTPTLS.TLSConfig("h2", "http/1.1")
	if err != nil {
		return nil, fmt.Errorf("HTTP server TLS: %w", err)
	}
	grpcTLS, err := cfg.GRPCTLS.TLSConfig("h2")
	if err != nil {
		return nil, fmt.Errorf("gRPC server TLS: %w", err)
	}
	httpListener, err := net.Listen("tcp", net.JoinHostPort(cfg.HTTPListenAddress, strconv.Itoa(cfg.HTTPListenPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP: %w", err)
	}
	grpcListener, err := net.Listen("tcp", net.JoinHostPort(cfg.GRPCListenAddress, strconv.Itoa(cfg.GRPCListenPort)))
	if err != nil {
		_ = httpListener.Close()
		return nil, fmt.Errorf("listen for gRPC: %w", err)
	}
	if httpTLS != nil {
		httpListener = tls.NewListener(httpListener, httpTLS)
	}
	grpcCreds := insecure.NewCredentials()
	if grpcTLS != nil {
		grpcCreds = credentials.NewTLS(grpcTLS)
	}
	mux := http.NewServeMux()
	grpcServer := grpc.NewServer(
		grpc.Creds(grpcCreds),
		grpc.MaxRecvMsgSize(cfg.GRPCMaxRecvMsgSize),
		grpc.MaxSendMsgSize(cfg.GRPCMaxSendMsgSize),
		grpc.ChainUnaryInterceptor(skipHealth(tenant.UnaryServerInterceptor)),
		grpc.ChainStreamInterceptor(skipFrontendWorkers(tenant.StreamServerInterceptor)),
	)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	return &server{
		cfg:    cfg,
		logger: logger,
		mux:    mux,
		authn:  authn,
		httpServer: &http.Server{
			Handler:           authn.Middleware(throttle.Middleware(mux)),
			ReadHeaderTimeout: min(30*time.Second, cfg.HTTPServerReadTimeout),
			ReadTimeout:       cfg.HTTPServerReadTimeout,
			WriteTimeout:      cfg.HTTPServerWriteTimeout,
			IdleTimeout:       cfg.HTTPServerIdleTimeout,
		},
		grpcServer:   grpcServer,
		httpListener: httpListener,
		grpcListener: grpcListener,
		health:       healthServer,
	}, nil
}

// skipHealth keeps tenant checks off the gRPC health service, which has no tenant.
func skipHealth(next grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod == healthpb.Health_Check_FullMethodName {
			return handler(ctx, req)
		}
		return next(ctx, req, info, handler)
	}
}

// skipFrontendWorkers keeps tenant checks off the query-frontend's worker streams, which carry every
// tenant's queries, each with its own tenant header.
func skipFrontendWorkers(next grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod == frontendpb.Frontend_Process_FullMethodName {
			return handler(srv, ss)
		}
		return next(srv, ss, info, handler)
	}
}

func (s *server) Start(ctx context.Context) error {
	// The credentials are loaded before the first request can arrive.
	if err := s.authn.Start(ctx); err != nil {
		return err
	}
	go func() {
		if err := s.httpServer.Serve(s.httpListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("HTTP server failed", "err", err)
		}
	}()
	go func() {
		if err := s.grpcServer.Serve(s.grpcListener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.logger.Error("gRPC server failed", "err", err)
		}
	}()
	s.logger.Info("servers listening", "http", s.httpListener.Addr().String(), "grpc", s.grpcListener.Addr().String())
	return nil
}

// drainHTTP stops accepting HTTP requests and waits for the in-flight ones; the app calls it before
// stopping the components those requests use.
func (s *server) drainHTTP(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.GracefulShutdownTimeout)
	defer cancel()
	return s.httpServer.Shutdown(ctx)
}

func (s *server) Stop(ctx context.Context) error {
	httpErr := s.drainHTTP(ctx)
	done := make(chan struct{})
	go func() {
		s.grpcServer.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.GracefulShutdownTimeout):
		s.grpcServer.Stop()
	}
	if errors.Is(httpErr, http.ErrServerClosed) {
		httpErr = nil
	}
	return errors.Join(httpErr, s.authn.Stop(ctx))
}

// grpcPort is the port the gRPC server actually listens on (useful when configured as 0).
func (s *server) grpcPort() int { return s.grpcListener.Addr().(*net.TCPAddr).Port }

// Package grpcclient keeps one gRPC connection per server address for the components that call
// ingesters and store-gateways: shared connections, health checks, retries of idempotent reads, and a
// timeout on every read.
package grpcclient

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/tlsconfig"
)

// Config configures the connections to one kind of server. Each client (ingester, store-gateway) has its
// own flags, under its own prefix.
type Config struct {
	prefix              string
	MaxRecvMsgSize      int
	MaxSendMsgSize      int
	ReadMaxAttempts     int
	ReadTimeout         time.Duration
	HealthCheckInterval time.Duration
	HealthCheckTimeout  time.Duration
	ReconnectMaxDelay   time.Duration
	TLS                 tlsconfig.ClientConfig
}

// RegisterFlagsWithPrefix registers the flags of the client of one kind of server as
// -<prefix>.<name>; server names the servers in the flags' help ("ingester", "store-gateway").
func (c *Config) RegisterFlagsWithPrefix(prefix, server string, f *flag.FlagSet) {
	c.prefix = prefix
	f.IntVar(&c.MaxRecvMsgSize, prefix+".grpc-max-recv-msg-size", 100<<20, "Largest gRPC message, in bytes, accepted from a "+server+".")
	f.IntVar(&c.MaxSendMsgSize, prefix+".grpc-max-send-msg-size", 100<<20, "Largest gRPC message, in bytes, sent to a "+server+".")
	f.IntVar(&c.ReadMaxAttempts, prefix+".read-max-attempts", 3, "Attempts of a read call to a "+server+" that answered Unavailable. Calls that write are never retried by the client.")
	f.DurationVar(&c.ReadTimeout, prefix+".read-timeout", time.Minute, "Timeout of each read call to a "+server+", retries included.")
	f.DurationVar(&c.HealthCheckInterval, prefix+".health-check-interval", 5*time.Second, "How often pooled connections are health-checked; a connection that fails its check is closed and dialled again on next use. 0 disables health checks.")
	f.DurationVar(&c.HealthCheckTimeout, prefix+".health-check-timeout", time.Second, "Timeout of one health check.")
	f.DurationVar(&c.ReconnectMaxDelay, prefix+".reconnect-max-delay", time.Second, "Longest wait between attempts to reconnect to a "+server+", so a restarted one is used again quickly.")
	c.TLS.RegisterFlagsWithPrefix(prefix+".", server, f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ReadMaxAttempts < 1 || c.ReadMaxAttempts > 5 {
		return fmt.Errorf("-%s.read-max-attempts must be between 1 and 5", c.prefix)
	}
	if c.ReadTimeout <= 0 {
		return fmt.Errorf("-%s.read-timeout must be positive", c.prefix)
	}
	if c.ReconnectMaxDelay <= 0 {
		return fmt.Errorf("-%s.reconnect-max-delay must be positive", c.prefix)
	}
	return c.TLS.Validate()
}

// serviceConfig bounds every read call by the read timeout and makes gRPC retry the idempotent read calls
// when the server is Unavailable (restarting, or its connection was just re-established); a server stream
// is retried only until its first message.
func (c *Config) serviceConfig(readMethods []string) string {
	names := make([]string, 0, len(readMethods))
	for _, m := range readMethods {
		service, method, _ := strings.Cut(m, "/")
		names = append(names, fmt.Sprintf(`{"service": %q, "method": %q}`, service, method))
	}
	return fmt.Sprintf(`{"methodConfig": [{
		"name": [%s],
		"timeout": "%.3fs",
		"retryPolicy": {
			"maxAttempts": %d,
			"initialBackoff": "0.05s",
			"maxBackoff": "0.5s",
			"backoffMultiplier": 2,
			"retryableStatusCodes": ["UNAVAILABLE"]
		}
	}]}`, strings.Join(names, ", "), c.ReadTimeout.Seconds(), max(c.ReadMaxAttempts, 2))
}

// Pool hands out a connection per server address (ingesters, store-gateways), dialling on first use.
// Connections are shared by all requests; gRPC multiplexes them.
type Pool struct {
	kind        string
	cfg         Config
	readMethods []string
	logger      *slog.Logger

	creds    credentials.TransportCredentials
	credsErr error // the TLS files could not be read: every dial fails with it

	mtx   sync.Mutex
	conns map[string]*grpc.ClientConn

	stop chan struct{}
	done chan struct{}

	connections        prometheus.GaugeFunc
	healthCheckFailure prometheus.Counter
}

// NewPool returns an empty pool of connections to servers of one kind (e.g. "storegateway"), whose
// readMethods ("package.Service/Method") are retried; its metrics are named strata_<kind>_client_*.
func NewPool(kind string, readMethods []string, cfg Config, reg prometheus.Registerer, logger *slog.Logger) *Pool {
	p := &Pool{kind: kind, cfg: cfg, readMethods: readMethods, logger: logger, conns: map[string]*grpc.ClientConn{}}
	p.creds = insecure.NewCredentials()
	if cl, err := cfg.TLS.NewClient(); err != nil {
		p.credsErr = fmt.Errorf("%s client TLS: %w", kind, err)
	} else if cl != nil {
		p.creds = cl.GRPCCredentials()
	}
	p.connections = promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_" + kind + "_client_connections",
		Help: "Open gRPC connections to " + kind + "s.",
	}, func() float64 {
		p.mtx.Lock()
		defer p.mtx.Unlock()
		return float64(len(p.conns))
	})
	p.healthCheckFailure = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "strata_" + kind + "_client_health_check_failures_total",
		Help: "Health checks of " + kind + " connections that failed; the connection was closed.",
	})
	return p
}

// Conn returns the shared connection to addr.
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if conn, ok := p.conns[addr]; ok {
		return conn, nil
	}
	if p.credsErr != nil {
		return nil, p.credsErr
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(p.creds),
		grpc.WithChainUnaryInterceptor(tenant.UnaryClientInterceptor),
		grpc.WithChainStreamInterceptor(tenant.StreamClientInterceptor),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(p.cfg.MaxRecvMsgSize),
			grpc.MaxCallSendMsgSize(p.cfg.MaxSendMsgSize),
		),
		grpc.WithDefaultServiceConfig(p.cfg.serviceConfig(p.readMethods)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   p.cfg.ReconnectMaxDelay,
			},
			MinConnectTimeout: 2 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", p.kind, addr, err)
	}
	p.conns[addr] = conn
	return conn, nil
}

// Start begins the periodic health checks.
func (p *Pool) Start(context.Context) error {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.healthCheckLoop()
	return nil
}

// Stop ends the health checks and closes every connection.
func (p *Pool) Stop(context.Context) error {
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	return p.Close()
}

func (p *Pool) healthCheckLoop() {
	defer close(p.done)
	if p.cfg.HealthCheckInterval <= 0 {
		<-p.stop
		return
	}
	t := time.NewTicker(p.cfg.HealthCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.checkAll()
		}
	}
}

// checkAll health-checks every pooled connection and closes those that fail, so a dead or replaced
// server's connection does not linger and the next call dials afresh.
func (p *Pool) checkAll() {
	p.mtx.Lock()
	conns := make(map[string]*grpc.ClientConn, len(p.conns))
	for addr, c := range p.conns {
		conns[addr] = c
	}
	p.mtx.Unlock()
	for addr, conn := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.HealthCheckTimeout)
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil {
			continue
		}
		p.healthCheckFailure.Inc()
		p.logger.Debug("closing unhealthy connection", "server", p.kind, "addr", addr, "err", err)
		p.mtx.Lock()
		if p.conns[addr] == conn {
			delete(p.conns, addr)
		}
		p.mtx.Unlock()
		_ = conn.Close()
	}
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	var errs []error
	for addr, conn := range p.conns {
		if err := conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
		delete(p.conns, addr)
	}
	return errors.Join(errs...)
}

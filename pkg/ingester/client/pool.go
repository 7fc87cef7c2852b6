// Package client keeps one gRPC connection per ingester for the distributors and queriers that call them.
package client

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
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Config configures the connections to ingesters.
type Config struct {
	MaxRecvMsgSize      int
	MaxSendMsgSize      int
	ReadMaxAttempts     int
	ReadTimeout         time.Duration
	HealthCheckInterval time.Duration
	HealthCheckTimeout  time.Duration
	ReconnectMaxDelay   time.Duration
}

// RegisterFlags registers the ingester client's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxRecvMsgSize, "ingester.client.grpc-max-recv-msg-size", 100<<20, "Largest gRPC message, in bytes, accepted from an ingester.")
	f.IntVar(&c.MaxSendMsgSize, "ingester.client.grpc-max-send-msg-size", 100<<20, "Largest gRPC message, in bytes, sent to an ingester.")
	f.IntVar(&c.ReadMaxAttempts, "ingester.client.read-max-attempts", 3, "Attempts of a read call to an ingester that answered Unavailable. Pushes are never retried by the client: the distributor's quorum covers a failed replica.")
	f.DurationVar(&c.ReadTimeout, "ingester.client.read-timeout", time.Minute, "Timeout of each read call to an ingester, retries included (pushes use -distributor.remote-timeout).")
	f.DurationVar(&c.HealthCheckInterval, "ingester.client.health-check-interval", 5*time.Second, "How often pooled connections are health-checked; a connection that fails its check is closed and dialled again on next use. 0 disables health checks.")
	f.DurationVar(&c.HealthCheckTimeout, "ingester.client.health-check-timeout", time.Second, "Timeout of one health check.")
	f.DurationVar(&c.ReconnectMaxDelay, "ingester.client.reconnect-max-delay", time.Second, "Longest wait between attempts to reconnect to an ingester, so a restarted ingester is used again quickly.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ReadMaxAttempts < 1 || c.ReadMaxAttempts > 5 {
		return errors.New("-ingester.client.read-max-attempts must be between 1 and 5")
	}
	if c.ReadTimeout <= 0 {
		return errors.New("-ingester.client.read-timeout must be positive")
	}
	if c.ReconnectMaxDelay <= 0 {
		return errors.New("-ingester.client.reconnect-max-delay must be positive")
	}
	return nil
}

// IngesterReadMethods are the ingester's idempotent read calls, which the pool retries.
var IngesterReadMethods = []string{
	"strata.ingester.Ingester/QueryStream",
	"strata.ingester.Ingester/LabelNames",
	"strata.ingester.Ingester/LabelValues",
	"strata.ingester.Ingester/Series",
	"strata.ingester.Ingester/MetricsMetadata",
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
	cfg         Config
	readMethods []string
	logger      *slog.Logger

	mtx   sync.Mutex
	conns map[string]*grpc.ClientConn

	stop chan struct{}
	done chan struct{}

	connections        prometheus.GaugeFunc
	healthCheckFailure prometheus.Counter
}

// NewPool returns an empty pool of connections to ingesters.
func NewPool(cfg Config, reg prometheus.Registerer, logger *slog.Logger) *Pool {
	return NewPoolFor("ingester", IngesterReadMethods, cfg, reg, logger)
}

// NewPoolFor returns an empty pool of connections to servers of one kind (e.g. "storegateway"), whose
// readMethods ("package.Service/Method") are retried; its metrics are named strata_<kind>_client_*.
func NewPoolFor(kind string, readMethods []string, cfg Config, reg prometheus.Registerer, logger *slog.Logger) *Pool {
	p := &Pool{cfg: cfg, readMethods: readMethods, logger: logger, conns: map[string]*grpc.ClientConn{}}
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

// GetClientFor returns the client of the ingester at addr, an IngesterClient.
func (p *Pool) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return IngesterClient{IngesterClient: ingesterpb.NewIngesterClient(conn), conn: conn}, nil
}

// IngesterClient is the generated client that can also push an EncodedPushRequest.
type IngesterClient struct {
	ingesterpb.IngesterClient
	conn *grpc.ClientConn
}

// PushEncoded is Push for a request whose bytes gRPC writes as they are, without assembling them first.
func (c IngesterClient) PushEncoded(ctx context.Context, req *ingesterpb.EncodedPushRequest, opts ...grpc.CallOption) (*ingesterpb.PushResponse, error) {
	out := new(ingesterpb.PushResponse)
	opts = append(opts[:len(opts):len(opts)], grpc.ForceCodecV2(ingesterpb.PushCodec))
	if err := c.conn.Invoke(ctx, ingesterpb.Ingester_Push_FullMethodName, req, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// Conn returns the shared connection to addr.
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if conn, ok := p.conns[addr]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
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
		return nil, fmt.Errorf("dial ingester %s: %w", addr, err)
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
// ingester's connection does not linger and the next call dials afresh.
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
		p.logger.Debug("closing unhealthy ingester connection", "addr", addr, "err", err)
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

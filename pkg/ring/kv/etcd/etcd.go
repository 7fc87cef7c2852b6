// Package etcd is a kv.Client backed by an etcd cluster: the ring store for deployments that already run
// etcd, or that prefer a strongly consistent store to gossip. Values are stored encoded by the codec under
// their key as given; CAS is a transaction conditioned on the key's revision, so concurrent writers from
// any number of processes never lose each other's updates.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// keepAliveTime and keepAliveTimeout make a connection to a dead or partitioned etcd member fail within
// seconds; without them a watch on a silently dropped connection would wait forever. The server rejects
// pings more often than every 5s by default, so keepAliveTime stays above that.
const (
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 5 * time.Second
)

// Client is a kv.Client storing values in etcd. It is safe for concurrent use; Close releases its
// connections.
type Client struct {
	cfg     Config
	codec   kv.Codec
	cli     *clientv3.Client
	logger  *slog.Logger
	metrics *metrics

	// beforeWatch, when set by a test, runs between WatchKey's read of the current value and the start of
	// its watch, the window in which a compaction forces the watch to start over.
	beforeWatch func()
}

var _ kv.Client = (*Client)(nil)

// New connects to the etcd cluster of cfg; values are encoded with codec. Connecting does not wait for
// etcd to answer: an unreachable cluster shows as errors from the first calls.
func New(cfg Config, codec kv.Codec, reg prometheus.Registerer, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	var dialOpts []grpc.DialOption
	if tlsCfg != nil && cfg.TLSServerName != "" {
		// The etcd client has gRPC check each endpoint's own host name, which overrides tls.Config's
		// ServerName; these credentials, applied last, put the configured name back.
		creds := serverNameCredentials{TransportCredentials: credentials.NewTLS(tlsCfg), serverName: cfg.TLSServerName}
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(creds))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password.Value,
		Logger:               newZapLogger(logger),
		DialOptions:          dialOpts,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %v: %w", cfg.Endpoints, err)
	}
	return &Client{cfg: cfg, codec: codec, cli: cli, logger: logger, metrics: m}, nil
}

// serverNameCredentials verify the server's certificate against a fixed name rather than the address
// dialled.
type serverNameCredentials struct {
	credentials.TransportCredentials
	serverName string
}

func (c serverNameCredentials) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.TransportCredentials.ClientHandshake(ctx, c.serverName, conn)
}

func (c serverNameCredentials) Clone() credentials.TransportCredentials {
	return serverNameCredentials{TransportCredentials: c.TransportCredentials.Clone(), serverName: c.serverName}
}

// Close closes the connections to etcd. Calls in flight fail and running WatchKey calls return.
func (c *Client) Close() error {
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd: close client: %w", err)
	}
	return nil
}

func (c *Client) decode(data []byte) (any, error) {
	v, err := c.codec.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("etcd: decode with %s: %w", c.codec.Name(), err)
	}
	return v, nil
}

// withClientContext returns ctx, also cancelled when the client is closed. Without it, a call in flight
// at Close would keep retrying on the closed connection (the etcd client retries unary calls up to 100
// times) for seconds.
func (c *Client) withClientContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.cli.Ctx(), cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Get implements kv.Client. The read is linearizable: it sees every write acknowledged before it started.
func (c *Client) Get(ctx context.Context, key string) (any, error) {
	ctx, cancel := c.withClientContext(ctx)
	defer cancel()
	resp, err := c.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return c.decode(resp.Kvs[0].Value)
}

func (c *Client) get(ctx context.Context, key string) (*clientv3.GetResponse, error) {
	start := time.Now()
	resp, err := c.cli.Get(ctx, key)
	c.metrics.observe(opGet, start, err)
	if err != nil {
		return nil, fmt.Errorf("etcd: get %q: %w", key, err)
	}
	return resp, nil
}

// CAS implements kv.Client. It reads the key and its revision, runs f, and writes f's result in a
// transaction that succeeds only if the key still has that revision (or still does not exist). When
// another writer got there first, the transaction returns the newer value and f runs again on it. f is
// called at most -<prefix>etcd.max-retries times, counting calls that asked to be retried.
func (c *Client) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	ctx, cancel := c.withClientContext(ctx)
	defer cancel()
	var (
		current []*mvccpb.KeyValue // the key as last read: empty when it does not exist
		fresh   bool               // whether current may be used, or the key must be read again
	)
	for range c.cfg.MaxRetries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fresh {
			resp, err := c.get(ctx, key)
			if err != nil {
				return err
			}
			current, fresh = resp.Kvs, true
		}
		var (
			in     any
			modRev int64
		)
		if len(current) > 0 {
			v, err := c.decode(current[0].Value)
			if err != nil {
				return err
			}
			in, modRev = v, current[0].ModRevision
		}
		out, retry, err := f(in)
		if err != nil {
			if retry {
				fresh = false // f may be waiting for the value to change; give it the latest
				continue
			}
			return err
		}
		if out == nil {
			return nil
		}
		data, err := c.codec.Encode(out)
		if err != nil {
			return fmt.Errorf("etcd: encode with %s: %w", c.codec.Name(), err)
		}
		ok, newer, err := c.writeIfUnchanged(ctx, key, modRev, data)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		c.metrics.casConflicts.Inc()
		current = newer
	}
	return fmt.Errorf("etcd: key %q after %d attempts: %w", key, c.cfg.MaxRetries, kv.ErrTooManyCASRetries)
}

// writeIfUnchanged puts data under key if the key's revision is still modRev (0: the key does not exist).
// When it is not, it returns the key's current state, read in the same transaction to save a round trip.
func (c *Client) writeIfUnchanged(ctx context.Context, key string, modRev int64, data []byte) (bool, []*mvccpb.KeyValue, error) {
	cond := clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
	if modRev == 0 {
		cond = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	start := time.Now()
	resp, err := c.cli.Txn(ctx).
		If(cond).
		Then(clientv3.OpPut(key, string(data))).
		Else(clientv3.OpGet(key)).
		Commit()
	c.metrics.observe(opTxn, start, err)
	if err != nil {
		return false, nil, fmt.Errorf("etcd: write %q: %w", key, err)
	}
	if resp.Succeeded {
		return true, nil, nil
	}
	if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil {
		return false, nil, fmt.Errorf("etcd: write %q: unexpected transaction response", key)
	}
	return false, resp.Responses[0].GetResponseRange().Kvs, nil
}

const (
	opGet = "get"
	opTxn = "txn"
)

// metrics are shared by all Clients of a registerer: a process may keep one client per ring.
type metrics struct {
	requestDuration *prometheus.HistogramVec
	casConflicts    prometheus.Counter
	watchRestarts   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	duration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_kv_etcd_request_duration_seconds",
		Help:    "Time taken by requests to etcd, by operation and status.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"operation", "status"}))
	if err != nil {
		return nil, err
	}
	conflicts, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_kv_etcd_cas_conflicts_total",
		Help: "Compare-and-swap writes to etcd that lost to a concurrent writer and were retried.",
	}))
	if err != nil {
		return nil, err
	}
	restarts, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_kv_etcd_watch_restarts_total",
		Help: "Watches on etcd keys that failed (connection loss, compaction, leader loss) and were started again.",
	}))
	if err != nil {
		return nil, err
	}
	return &metrics{requestDuration: duration, casConflicts: conflicts, watchRestarts: restarts}, nil
}

func (m *metrics) observe(op string, start time.Time, err error) {
	status := "success"
	if err != nil {
		status = "error"
	}
	m.requestDuration.WithLabelValues(op, status).Observe(time.Since(start).Seconds())
}

// register registers c with reg, or returns the equal collector a previous Client registered, so that
// several clients in one process share their metrics instead of failing to start.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	c, err := promutil.RegisterOrReuse(reg, c)
	if err != nil {
		return c, fmt.Errorf("etcd: register metrics: %w", err)
	}
	return c, nil
}

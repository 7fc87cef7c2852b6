// Package multi is a kv.Client over two stores, for moving a ring from one store to another (etcd to
// memberlist, say) without downtime. Reads come from the primary; writes go to the primary and, with
// mirroring on, are copied to the secondary. A migration enables mirroring so the new store fills up,
// switches the primary at runtime on every process, then moves the processes to the new store alone.
package multi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// Client is a kv.Client that reads from a primary store and mirrors writes to a secondary one. Which
// store is primary and whether mirroring is on can change at runtime.
type Client struct {
	stores        [2]store
	mirrorTimeout time.Duration
	logger        *slog.Logger
	metrics       *metrics

	mu       sync.Mutex
	primary  int           // index into stores of the current primary
	mirror   bool          // whether CAS copies to the secondary
	switched chan struct{} // closed (and replaced) when the primary changes, to move watches over

	// mirrorSlot serialises mirror copies. Each copy reads the primary and then writes the secondary;
	// without ordering, a copy that read earlier could write last and leave the secondary stale.
	mirrorSlot chan struct{}
}

// store is one of the two backends with the name the configuration knows it by.
type store struct {
	name   string
	client kv.Client
}

var _ kv.Client = (*Client)(nil)

// New returns a client over primary and secondary, the stores that cfg.Primary and cfg.Secondary name.
// cfg must be valid (Config.Validate).
func New(cfg Config, primary, secondary kv.Client, reg prometheus.Registerer, logger *slog.Logger) *Client {
	c := &Client{
		stores:        [2]store{{name: cfg.Primary, client: primary}, {name: cfg.Secondary, client: secondary}},
		mirrorTimeout: cfg.MirrorTimeout,
		logger:        logger,
		metrics:       newMetrics(reg, logger),
		mirror:        cfg.MirrorEnabled,
		switched:      make(chan struct{}),
		mirrorSlot:    make(chan struct{}, 1),
	}
	c.updatePrimaryMetric()
	return c
}

// Primary returns the name of the current primary store.
func (c *Client) Primary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[c.primary].name
}

// SetPrimary makes the store called name the primary: reads and running watches move to it, and writes
// go to it first (and are mirrored to the other one, if mirroring is on). Enable mirroring well before
// switching, so the new primary already holds what the old one does.
func (c *Client) SetPrimary(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := -1
	for i, s := range c.stores {
		if s.name == name {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("multi: unknown store %q, want %q or %q", name, c.stores[0].name, c.stores[1].name)
	}
	if idx == c.primary {
		return nil
	}
	c.logger.Info("switching primary store", "from", c.stores[c.primary].name, "to", name)
	c.primary = idx
	close(c.switched)
	c.switched = make(chan struct{})
	c.updatePrimaryMetricLocked()
	return nil
}

// SetMirrorEnabled turns copying writes to the secondary store on or off.
func (c *Client) SetMirrorEnabled(enabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mirror != enabled {
		c.logger.Info("mirroring to secondary store changed", "enabled", enabled, "secondary", c.stores[1-c.primary].name)
	}
	c.mirror = enabled
}

// roles returns the current primary and secondary, whether to mirror, and the channel closed when the
// primary changes.
func (c *Client) roles() (primary, secondary store, mirror bool, switched <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[c.primary], c.stores[1-c.primary], c.mirror, c.switched
}

// Get implements kv.Client: it reads from the primary.
func (c *Client) Get(ctx context.Context, key string) (any, error) {
	primary, _, _, _ := c.roles()
	return primary.client.Get(ctx, key)
}

// CAS implements kv.Client. It runs on the primary, and its error is the primary's alone. When the
// primary's value changed and mirroring is on, the value the primary now holds is copied to the
// secondary; a failed copy is logged and counted, and the next write's copy repairs it.
func (c *Client) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	primary, secondary, mirror, switched := c.roles()
	wrote := false // whether f's last call asked for a write; the stores call f on the caller's goroutine
	err := primary.client.CAS(ctx, key, func(in any) (any, bool, error) {
		out, retry, err := f(in)
		wrote = err == nil && out != nil
		return out, retry, err
	})
	if err != nil || !wrote || !mirror {
		return err
	}
	c.copyToSecondary(ctx, key, primary, secondary, switched)
	return nil
}

// copyToSecondary writes the primary's current value of key to the secondary. It copies what the primary
// holds rather than f's result, because a store such as memberlist merges f's result into its value.
// A switch of primary in the meantime cancels the copy: the secondary is now the primary, and the old
// primary's value could overwrite a newer write made there.
func (c *Client) copyToSecondary(ctx context.Context, key string, primary, secondary store, switched <-chan struct{}) {
	// The copy finishes even if the caller gives up now that its write is done, within the timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.mirrorTimeout)
	defer cancel()
	c.metrics.mirrorWrites.Inc()
	err := func() error {
		select {
		case c.mirrorSlot <- struct{}{}:
			defer func() { <-c.mirrorSlot }()
		case <-ctx.Done():
			return fmt.Errorf("waiting for earlier copies: %w", ctx.Err())
		}
		v, err := primary.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read primary: %w", err)
		}
		if v == nil {
			return errors.New("key vanished from the primary")
		}
		return secondary.client.CAS(ctx, key, func(any) (any, bool, error) {
			select {
			case <-switched:
				return nil, false, errors.New("primary store switched during the copy")
			default:
			}
			// A store may keep or modify what it is given; a retried call must not hand it the same value.
			if m, ok := v.(kv.Mergeable); ok {
				return m.Clone(), false, nil
			}
			return v, false, nil
		})
	}()
	if err != nil {
		c.metrics.mirrorFailures.Inc()
		c.logger.Warn("copying write to secondary store failed", "key", key, "primary", primary.name,
			"secondary", secondary.name, "err", err)
	}
}

// WatchKey implements kv.Client. It watches the primary; when the primary changes, it moves to the new
// one, which first delivers its current value. That value may be older than the last one the old
// primary delivered if the stores were not mirrored; mirroring before switching avoids it.
func (c *Client) WatchKey(ctx context.Context, key string, f func(any) bool) {
	for {
		primary, _, _, switched := c.roles()
		watchCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-switched:
				cancel()
			case <-watchCtx.Done():
			}
		}()
		stopped := false
		primary.client.WatchKey(watchCtx, key, func(v any) bool {
			select {
			case <-switched:
				return false // a value the old primary sent after the switch is no longer authoritative
			default:
			}
			if !f(v) {
				stopped = true
				return false
			}
			return true
		})
		cancel() // also ends the goroutine above
		if stopped || ctx.Err() != nil {
			return
		}
		select {
		case <-switched: // follow the new primary
		default:
			return // the store ended the watch on its own (it was closed); restarting it would spin
		}
	}
}

// updatePrimaryMetric sets the primary gauge from the current primary.
func (c *Client) updatePrimaryMetric() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updatePrimaryMetricLocked()
}

func (c *Client) updatePrimaryMetricLocked() {
	for i, s := range c.stores {
		v := 0.0
		if i == c.primary {
			v = 1
		}
		c.metrics.primary.WithLabelValues(s.name).Set(v)
	}
}

// metrics are shared by all Clients of a registerer: a process keeps one client per ring.
type metrics struct {
	mirrorWrites   prometheus.Counter
	mirrorFailures prometheus.Counter
	primary        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) *metrics {
	return &metrics{
		mirrorWrites: register(reg, logger, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_kv_multi_mirror_writes_total",
			Help: "Values copied (or attempted) from the primary store to the secondary store.",
		})),
		mirrorFailures: register(reg, logger, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_kv_multi_mirror_write_failures_total",
			Help: "Copies from the primary store to the secondary store that failed; the primary's write succeeded regardless.",
		})),
		primary: register(reg, logger, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_kv_multi_primary_store",
			Help: "1 for the store currently serving as primary, 0 for the other.",
		}, []string{"store"})),
	}
}

// register registers c with reg (if any) and returns it, or the equal collector another Client
// registered. New has no error to return, and a metric that cannot be registered must not stop the ring
// store from working, so other failures are logged and leave c unregistered.
func register[T prometheus.Collector](reg prometheus.Registerer, logger *slog.Logger, c T) T {
	registered, err := promutil.RegisterOrReuse(reg, c)
	if err != nil {
		logger.Warn("cannot register metric", "err", err)
		return c
	}
	return registered
}

package ring

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/services"
)

// LifecyclerConfig describes how an instance registers itself in a ring.
type LifecyclerConfig struct {
	ID   string
	Addr string
	// Port is appended to Addr; 0 means Addr is used as given (the app fills in its gRPC port).
	Port                 int
	Zone                 string
	NumTokens            int
	HeartbeatPeriod      time.Duration
	UnregisterOnShutdown bool
	// TokensFilePath, when set, keeps the instance's tokens on disk so a restart takes them back even if
	// the ring forgot the instance meanwhile.
	TokensFilePath string
	// AutoForgetAfter removes other instances whose heartbeat is older than this (0: never). The app sets
	// it from -ring.auto-forget-unhealthy-periods × -ring.heartbeat-timeout.
	AutoForgetAfter time.Duration
}

// RegisterFlagsWithPrefix registers the lifecycler's flags under prefix (the app uses "ingester.ring.").
func (c *LifecyclerConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	f.StringVar(&c.ID, prefix+"instance-id", hostname, "Instance ID in the ring; must be unique and stable across restarts, so the instance gets its tokens back.")
	f.StringVar(&c.Addr, prefix+"instance-addr", defaultInstanceAddr(), "IP address other components reach this instance at. Defaults to the first private IPv4 address of the machine, or to 127.0.0.1 when the ring is the in-process one (-ingester.ring.store=inmemory).")
	f.IntVar(&c.Port, prefix+"instance-port", 0, "Port advertised in the ring; 0 uses the gRPC server's port.")
	f.StringVar(&c.Zone, prefix+"instance-availability-zone", "", "Availability zone of this instance, used when zone awareness is on.")
	f.IntVar(&c.NumTokens, prefix+"num-tokens", 128, "Number of tokens this instance owns in the ring; more tokens spread the load more evenly.")
	f.DurationVar(&c.HeartbeatPeriod, prefix+"heartbeat-period", 15*time.Second, "How often the instance updates its heartbeat in the ring.")
	f.BoolVar(&c.UnregisterOnShutdown, prefix+"unregister-on-shutdown", true, "Remove the instance from the ring on shutdown. If false, it stays LEAVING and gets its tokens back on restart.")
	f.StringVar(&c.TokensFilePath, prefix+"tokens-file-path", "", "File in which the instance keeps its tokens, so that a restart takes the same tokens back. Empty: tokens are only kept in the ring.")
}

// Validate reports a configuration the lifecycler cannot work with.
func (c *LifecyclerConfig) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("ring: instance ID must not be empty (-ingester.ring.instance-id)")
	case c.NumTokens < 1:
		return errors.New("ring: number of tokens must be at least 1 (-ingester.ring.num-tokens)")
	case c.HeartbeatPeriod <= 0:
		return errors.New("ring: heartbeat period must be positive (-ingester.ring.heartbeat-period)")
	}
	return nil
}

// Address is the address registered in the ring: Addr with Port appended when Port is set.
func (c *LifecyclerConfig) Address() string {
	if c.Port == 0 {
		return c.Addr
	}
	return net.JoinHostPort(c.Addr, strconv.Itoa(c.Port))
}

// defaultInstanceAddr picks the first private IPv4 address of the machine, else the first non-loopback
// IPv4 address, else 127.0.0.1.
func defaultInstanceAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var fallback string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipnet.IP.To4()
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		if ip.IsPrivate() {
			return ip.String()
		}
		if fallback == "" {
			fallback = ip.String()
		}
	}
	if fallback != "" {
		return fallback
	}
	return "127.0.0.1"
}

// Lifecycler keeps one instance's entry in a ring: it registers the instance on Start, heartbeats, records
// state changes, and leaves the ring on Stop.
type Lifecycler struct {
	cfg      LifecyclerConfig
	ringName string
	key      string
	kv       kv.Client
	logger   *slog.Logger
	// now is the clock stamped into heartbeats; tests replace it.
	now func() time.Time

	mu           sync.Mutex
	state        InstanceState
	tokens       []uint32
	registeredAt int64

	cancel context.CancelFunc
	done   chan struct{}

	heartbeats        prometheus.Counter
	heartbeatFailures prometheus.Counter
}

var _ services.Service = (*Lifecycler)(nil)

// NewLifecycler returns a lifecycler for the instance cfg describes, in the ring stored under ringKey.
func NewLifecycler(cfg LifecyclerConfig, ringName, ringKey string, kvClient kv.Client, reg prometheus.Registerer, logger *slog.Logger) (*Lifecycler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kvClient == nil {
		return nil, errors.New("ring: nil KV client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	labels := prometheus.Labels{"name": ringName}
	l := &Lifecycler{
		cfg:      cfg,
		ringName: ringName,
		key:      ringKey,
		kv:       kvClient,
		logger:   logger.With("component", "lifecycler", "ring", ringName, "instance", cfg.ID),
		now:      time.Now,
		state:    PENDING,
	}
	var err error
	if l.heartbeats, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_ring_lifecycler_heartbeats_total", Help: "Heartbeats written to the ring.", ConstLabels: labels,
	})); err != nil {
		return nil, err
	}
	if l.heartbeatFailures, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_ring_lifecycler_heartbeat_failures_total", Help: "Heartbeats that failed to be written to the ring.", ConstLabels: labels,
	})); err != nil {
		return nil, err
	}
	return l, nil
}

// State returns the state this instance last recorded in the ring.
func (l *Lifecycler) State() InstanceState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Tokens returns a copy of this instance's tokens (nil before Start).
func (l *Lifecycler) Tokens() []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// Start registers the instance: first PENDING, then JOINING with its tokens. The tokens come from the
// tokens file if there is one, else from a previous ring entry with the same ID (a restart), else they are
// new tokens no other instance owns. Then the heartbeats start.
func (l *Lifecycler) Start(ctx context.Context) error {
	fileTokens, err := l.loadTokensFile()
	if err != nil {
		return err
	}
	// PENDING keeps the tokens a restarted instance had, so its ranges do not move while it starts.
	var previousTokens []uint32
	err = l.register(ctx, PENDING, func(_ *Desc, prev InstanceDesc, restarted bool) []uint32 {
		previousTokens = nil
		if restarted {
			previousTokens = prev.Tokens
		}
		if len(fileTokens) > 0 {
			return fileTokens
		}
		return previousTokens
	})
	if err != nil {
		return err
	}
	err = l.register(ctx, JOINING, func(d *Desc, _ InstanceDesc, _ bool) []uint32 {
		var tokens []uint32
		switch {
		case len(fileTokens) > 0:
			tokens = fileTokens
		case len(previousTokens) > 0:
			tokens = previousTokens
		}
		if len(tokens) > l.cfg.NumTokens {
			tokens = tokens[:l.cfg.NumTokens]
		}
		if missing := l.cfg.NumTokens - len(tokens); missing > 0 {
			var taken []uint32
			for id, inst := range d.Instances {
				if id != l.cfg.ID && inst.State != LEFT {
					taken = append(taken, inst.Tokens...)
				}
			}
			tokens = append(slices.Clone(tokens), GenerateTokens(missing, append(taken, tokens...))...)
			slices.Sort(tokens)
		}
		return tokens
	})
	if err != nil {
		return err
	}
	if err := l.saveTokensFile(); err != nil {
		return err
	}
	l.logger.Info("registered in ring", "tokens", l.cfg.NumTokens, "from_file", len(fileTokens) > 0)

	loopCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.heartbeatLoop(loopCtx)
	return nil
}

// register writes the instance's entry in state, with the tokens that pick chooses from the current
// descriptor and the previous entry of this ID (restarted is false when there was none).
func (l *Lifecycler) register(ctx context.Context, state InstanceState, pick func(d *Desc, prev InstanceDesc, restarted bool) []uint32) error {
	err := l.kv.CAS(ctx, l.key, func(in any) (any, bool, error) {
		d, err := descFrom(in)
		if err != nil {
			return nil, false, err
		}
		nowMs := l.now().UnixMilli()
		prev, restarted := d.Instances[l.cfg.ID]
		restarted = restarted && prev.State != LEFT
		registeredAt := nowMs
		if restarted {
			registeredAt = prev.RegisteredTimestamp
		}
		tokens := pick(d, prev, restarted)
		d.Instances[l.cfg.ID] = InstanceDesc{
			ID: l.cfg.ID, Addr: l.cfg.Address(), Zone: l.cfg.Zone, State: state,
			Tokens: tokens, Timestamp: nowMs, RegisteredTimestamp: registeredAt,
		}
		l.mu.Lock()
		l.tokens, l.registeredAt, l.state = tokens, registeredAt, state
		l.mu.Unlock()
		return d, false, nil
	})
	if err != nil {
		return fmt.Errorf("ring %s: register instance %s as %s: %w", l.ringName, l.cfg.ID, state, err)
	}
	return nil
}

func (l *Lifecycler) heartbeatLoop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.cfg.HeartbeatPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.heartbeat(ctx); err != nil {
				l.heartbeatFailures.Inc()
				l.logger.Warn("heartbeat failed", "err", err)
			}
		}
	}
}

// heartbeat stamps the entry with the current time.
func (l *Lifecycler) heartbeat(ctx context.Context) error {
	if err := l.update(ctx, nil); err != nil {
		return err
	}
	l.heartbeats.Inc()
	return nil
}

// update writes the instance's entry with a fresh timestamp, and with state when it is not nil. The entry
// is rewritten from the lifecycler's own record, so an instance forgotten while it still runs comes back.
func (l *Lifecycler) update(ctx context.Context, state *InstanceState) error {
	return l.kv.CAS(ctx, l.key, func(in any) (any, bool, error) {
		d, err := descFrom(in)
		if err != nil {
			return nil, false, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		// The local state changes inside the CAS, under l.mu, so a concurrent heartbeat cannot write the
		// old state back after this one.
		if state != nil {
			l.state = *state
		}
		now := l.now()
		d.Instances[l.cfg.ID] = InstanceDesc{
			ID: l.cfg.ID, Addr: l.cfg.Address(), Zone: l.cfg.Zone, State: l.state,
			Tokens: l.tokens, Timestamp: now.UnixMilli(), RegisteredTimestamp: l.registeredAt,
		}
		l.forgetLongUnhealthy(d, now)
		return d, false, nil
	})
}

// forgetLongUnhealthy drops other instances that have not heartbeated for AutoForgetAfter: they died
// without leaving, and their tokens would otherwise keep a replica of their series unavailable forever.
func (l *Lifecycler) forgetLongUnhealthy(d *Desc, now time.Time) {
	if l.cfg.AutoForgetAfter <= 0 {
		return
	}
	cutoff := now.Add(-l.cfg.AutoForgetAfter).UnixMilli()
	for id, inst := range d.Instances {
		if id != l.cfg.ID && inst.State != LEFT && inst.Timestamp < cutoff {
			delete(d.Instances, id)
			l.logger.Warn("forgot instance that has been unhealthy too long", "forgotten", id, "last_heartbeat", inst.HeartbeatTime())
		}
	}
}

// ChangeState records a new state for the instance in the ring (e.g. ACTIVE once its WAL is replayed).
// LEFT is reserved for removal and refused.
func (l *Lifecycler) ChangeState(ctx context.Context, state InstanceState) error {
	if state < PENDING || state >= LEFT {
		return fmt.Errorf("ring: cannot change instance state to %s", state)
	}
	previous := l.State()
	if err := l.update(ctx, &state); err != nil {
		return fmt.Errorf("ring %s: change instance %s to %s: %w", l.ringName, l.cfg.ID, state, err)
	}
	if previous != state {
		l.logger.Info("changed state", "state", state.String())
	}
	return nil
}

// SetUnregisterOnShutdown changes whether Stop removes the instance from the ring, e.g. before a
// scale-down (/ingester/prepare-shutdown).
func (l *Lifecycler) SetUnregisterOnShutdown(unregister bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.UnregisterOnShutdown = unregister
}

// UnregisterOnShutdown reports whether Stop will remove the instance from the ring.
func (l *Lifecycler) UnregisterOnShutdown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.UnregisterOnShutdown
}

// loadTokensFile returns the tokens saved by a previous run, or nil when there is no file.
func (l *Lifecycler) loadTokensFile() ([]uint32, error) {
	if l.cfg.TokensFilePath == "" {
		return nil, nil
	}
	data, err := os.ReadFile(l.cfg.TokensFilePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ring: read tokens file: %w", err)
	}
	var file tokensFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("ring: tokens file %s is not valid: %w", l.cfg.TokensFilePath, err)
	}
	slices.Sort(file.Tokens)
	return slices.Compact(file.Tokens), nil
}

// saveTokensFile writes the tokens atomically (write, then rename) so a crash never leaves half a file.
func (l *Lifecycler) saveTokensFile() error {
	if l.cfg.TokensFilePath == "" {
		return nil
	}
	data, err := json.Marshal(tokensFile{Tokens: l.Tokens()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.cfg.TokensFilePath), 0o755); err != nil {
		return fmt.Errorf("ring: create tokens file directory: %w", err)
	}
	tmp := l.cfg.TokensFilePath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("ring: write tokens file: %w", err)
	}
	if err := os.Rename(tmp, l.cfg.TokensFilePath); err != nil {
		return fmt.Errorf("ring: write tokens file: %w", err)
	}
	return nil
}

// tokensFile is the on-disk form of an instance's tokens.
type tokensFile struct {
	Tokens []uint32 `json:"tokens"`
}

// Stop stops heartbeating, turns the instance LEAVING, and then removes it from the ring unless
// UnregisterOnShutdown is false, in which case it stays LEAVING so a restart gets its tokens back. Stop
// without a successful Start does nothing.
func (l *Lifecycler) Stop(ctx context.Context) error {
	if l.cancel == nil {
		return nil // never started, so never registered
	}
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := l.ChangeState(ctx, LEAVING); err != nil {
		return err
	}
	if !l.UnregisterOnShutdown() {
		return nil
	}
	if err := Forget(ctx, l.kv, l.key, l.cfg.ID); err != nil {
		return err
	}
	l.logger.Info("unregistered from ring")
	return nil
}

// Forget removes instance id from the ring stored under key, e.g. an instance that died without
// unregistering. It returns an error if the ring has no such instance.
func Forget(ctx context.Context, kvClient kv.Client, key, id string) error {
	err := kvClient.CAS(ctx, key, func(in any) (any, bool, error) {
		d, err := descFrom(in)
		if err != nil {
			return nil, false, err
		}
		if inst, ok := d.Instances[id]; !ok || inst.State == LEFT {
			return nil, false, fmt.Errorf("instance %q is not in the ring", id)
		}
		delete(d.Instances, id)
		return d, false, nil
	})
	if err != nil {
		return fmt.Errorf("ring: forget instance: %w", err)
	}
	return nil
}

// Package runtimeconfig keeps a configuration file that operators change while Strata runs (per-tenant
// limit overrides): it re-reads the file periodically and keeps the last version that parsed.
package runtimeconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Config says which file to read and how often.
type Config struct {
	File         string
	ReloadPeriod time.Duration
}

// RegisterFlags registers the flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.File, "runtime-config.file", "", "YAML file of settings that change without a restart, such as per-tenant limit overrides (overrides: {tenant: {limit: value}}). Empty: none.")
	f.DurationVar(&c.ReloadPeriod, "runtime-config.reload-period", 10*time.Second, "How often the runtime configuration file is re-read.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.File != "" && c.ReloadPeriod <= 0 {
		return errors.New("-runtime-config.reload-period must be positive")
	}
	return nil
}

// Manager holds the current value of the file, parsed by parse into a T.
type Manager[T any] struct {
	cfg    Config
	what   string // names the file in logs and errors
	parse  func([]byte) (*T, error)
	logger *slog.Logger

	current atomic.Pointer[T]
	// lastHash is the hash of the file last read, parsed or not, so an unchanged file is not re-parsed
	// and a broken one is reported once, not every period.
	lastHash string

	reloadSuccess prometheus.Gauge
	hash          *prometheus.GaugeVec

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a manager of the file cfg names; with no file, Current is always nil.
func New[T any](cfg Config, parse func([]byte) (*T, error), reg prometheus.Registerer, logger *slog.Logger) *Manager[T] {
	return NewFile(cfg, "runtime configuration", "strata_runtime_config", parse, reg, logger)
}

// NewFile is New for another file that changes while Strata runs: what names it in logs, and its metrics
// are <metricPrefix>_last_reload_successful and <metricPrefix>_hash.
func NewFile[T any](cfg Config, what, metricPrefix string, parse func([]byte) (*T, error), reg prometheus.Registerer, logger *slog.Logger) *Manager[T] {
	return &Manager[T]{
		cfg:    cfg,
		what:   what,
		parse:  parse,
		logger: logger,
		reloadSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "_last_reload_successful",
			Help: "1 if the last read of the " + what + " file succeeded, 0 if it failed and the previous version is still in effect.",
		}),
		hash: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "_hash",
			Help: "1 for the SHA-256 of the " + what + " file in effect.",
		}, []string{"sha256"}),
		stop: make(chan struct{}),
	}
}

// Current returns the configuration in effect, nil when there is no file.
func (m *Manager[T]) Current() *T { return m.current.Load() }

// Start reads the file; a file that cannot be read or parsed at start is an error, since there is no
// previous version to keep. It then re-reads the file every reload period until Stop.
func (m *Manager[T]) Start(context.Context) error {
	if m.cfg.File == "" {
		return nil
	}
	if err := m.reload(); err != nil {
		return fmt.Errorf("%s: %w", m.what, err)
	}
	m.wg.Add(1)
	go m.loop()
	return nil
}

// Stop ends the reloads.
func (m *Manager[T]) Stop(context.Context) error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
	return nil
}

func (m *Manager[T]) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ReloadPeriod)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if err := m.reload(); err != nil {
				m.logger.Error(m.what+" not reloaded, the previous one stays in effect", "file", m.cfg.File, "err", err)
			}
		}
	}
}

// reload reads and parses the file, and makes it current if it parsed.
func (m *Manager[T]) reload() error {
	data, err := os.ReadFile(m.cfg.File)
	if err != nil {
		m.reloadSuccess.Set(0)
		return err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if hash == m.lastHash {
		return nil // unchanged: the gauge still tells whether this version parsed
	}
	m.lastHash = hash
	v, err := m.parse(data)
	if err != nil {
		m.reloadSuccess.Set(0)
		return fmt.Errorf("parse %s: %w", m.cfg.File, err)
	}
	m.current.Store(v)
	m.reloadSuccess.Set(1)
	m.hash.Reset()
	m.hash.WithLabelValues(hash).Set(1)
	m.logger.Info(m.what+" loaded", "file", m.cfg.File, "sha256", hash)
	return nil
}

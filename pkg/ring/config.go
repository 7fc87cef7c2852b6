package ring

import (
	"errors"
	"flag"
	"time"
)

// Config is how a reader of the ring interprets it.
type Config struct {
	// HeartbeatTimeout is how old an instance's last heartbeat may be before it counts as unhealthy.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// ReplicationFactor is how many instances hold each series. Set by the app from
	// -distributor.replication-factor, whose default depends on the KV store in use.
	ReplicationFactor int `yaml:"-"`
	// ZoneAwarenessEnabled places each series' replicas in distinct zones. Set by the app from its own flag.
	ZoneAwarenessEnabled bool `yaml:"-"`
}

// RegisterFlags registers -ring.heartbeat-timeout only; the other fields belong to other components' flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.HeartbeatTimeout, "ring.heartbeat-timeout", time.Minute,
		"An instance whose last heartbeat in the ring is older than this is unhealthy: it gets no writes and "+
			"counts as failed for reads.")
}

// Validate reports a configuration the ring cannot work with.
func (c *Config) Validate() error {
	if c.HeartbeatTimeout <= 0 {
		return errors.New("ring: heartbeat timeout must be positive (-ring.heartbeat-timeout)")
	}
	if c.ReplicationFactor < 1 {
		return errors.New("ring: replication factor must be at least 1 (-distributor.replication-factor)")
	}
	return nil
}

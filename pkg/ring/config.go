package ring

import (
	"errors"
	"flag"
	"time"
)

// Config is how a reader of the ring interprets it.
type Config struct {
	// HeartbeatTimeout is how old an instance's last heartbeat may be before it counts as unhealthy.
	HeartbeatTimeout time.Duration
	// ReplicationFactor is how many instances hold each series. Set by the app from
	// -distributor.replication-factor, whose default depends on the KV store in use.
	ReplicationFactor int
	// AutoForgetUnhealthyPeriods makes lifecyclers remove instances unhealthy for this many heartbeat
	// timeouts (0: never).
	AutoForgetUnhealthyPeriods int
	// ZoneAwarenessEnabled places each series' replicas in distinct zones. Set by the app from its own flag.
	ZoneAwarenessEnabled bool
}

// RegisterFlags registers -ring.heartbeat-timeout only; the other fields belong to other components' flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.HeartbeatTimeout, "ring.heartbeat-timeout", time.Minute,
		"An instance whose last heartbeat in the ring is older than this is unhealthy: it gets no writes and "+
			"counts as failed for reads.")
	f.IntVar(&c.AutoForgetUnhealthyPeriods, "ring.auto-forget-unhealthy-periods", 10,
		"Remove an instance from the ring once it has been unhealthy for this many -ring.heartbeat-timeout periods, "+
			"so that a dead instance does not hold a replica of its series forever. 0 disables it.")
}

// Validate reports a configuration the ring cannot work with.
func (c *Config) Validate() error {
	if c.HeartbeatTimeout <= 0 {
		return errors.New("ring: heartbeat timeout must be positive (-ring.heartbeat-timeout)")
	}
	if c.AutoForgetUnhealthyPeriods < 0 {
		return errors.New("ring: -ring.auto-forget-unhealthy-periods must not be negative")
	}
	if c.ReplicationFactor < 1 {
		return errors.New("ring: replication factor must be at least 1 (-distributor.replication-factor)")
	}
	return nil
}

// AutoForgetAfter is how long an instance may be unhealthy before lifecyclers remove it (0: never).
func (c *Config) AutoForgetAfter() time.Duration {
	return time.Duration(c.AutoForgetUnhealthyPeriods) * c.HeartbeatTimeout
}

package memberlist

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the KV's own counters; gauges read the live state when scraped.
type metrics struct {
	receivedBroadcasts prometheus.Counter
	invalidBroadcasts  prometheus.Counter
	sentBroadcasts     *prometheus.CounterVec
	droppedBroadcasts  prometheus.Counter
	fullStateSyncs     prometheus.Counter
	casAttempts        prometheus.Counter
	casFailures        prometheus.Counter
	tombstonesRemoved  prometheus.Counter
	transport          *transportMetrics
}

func newMetrics(k *KV, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		receivedBroadcasts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_received_broadcasts_total",
			Help: "Value changes received from other members, by gossip or direct send.",
		}),
		invalidBroadcasts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_received_broadcasts_invalid_total",
			Help: "Received value changes dropped because they did not decode or merge.",
		}),
		sentBroadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_memberlist_sent_broadcasts_total",
			Help: "Value changes sent to other members: udp in gossip packets, tcp for changes too large for a packet.",
		}, []string{"transport"}),
		droppedBroadcasts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_dropped_broadcasts_total",
			Help: "Large value changes not sent because the send queue was full; push-pull repairs them later.",
		}),
		fullStateSyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_full_state_syncs_total",
			Help: "Full states received from other members in push-pull exchanges, including joins.",
		}),
		casAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_cas_attempts_total",
			Help: "Compare-and-swap attempts, retries included.",
		}),
		casFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_cas_failures_total",
			Help: "Compare-and-swap calls that returned an error.",
		}),
		tombstonesRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_tombstones_removed_total",
			Help: "Tombstones dropped after -memberlist.left-ingesters-timeout.",
		}),
		transport: newTransportMetrics(),
	}
	for _, t := range []string{transportUDP, transportTCP} {
		m.sentBroadcasts.WithLabelValues(t)
	}
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{
		m.receivedBroadcasts, m.invalidBroadcasts, m.sentBroadcasts, m.droppedBroadcasts, m.fullStateSyncs,
		m.casAttempts, m.casFailures, m.tombstonesRemoved, m.transport.rejectedConns, m.transport.droppedPackets,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_memberlist_members",
			Help: "Members of the gossip cluster this process sees alive, itself included.",
		}, func() float64 { return float64(k.numMembers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_memberlist_kv_values",
			Help: "Keys that hold a value in the local store.",
		}, func() float64 { return float64(k.numValues()) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("memberlist: register metrics (one KV per process): %w", err)
		}
	}
	return m, nil
}

package memberlist

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	hashicorp "github.com/hashicorp/memberlist"
)

// Wire formats. A message carries one value (or a change to it): a format byte, the key and the codec name
// (each uvarint-length-prefixed), then the encoded value up to the end. A full state, exchanged in
// push-pull, is a format byte followed by uvarint-length-prefixed messages. The format bytes let a later
// version change the layout without old members misreading it.
const (
	messageFormat byte = 1
	stateFormat   byte = 1

	// maxNameLen bounds keys and codec names in received messages, so garbage cannot make us allocate much.
	maxNameLen = 1024
)

// Transports a change can be sent over, the values of the transport label of the sent-broadcasts metric.
const (
	transportUDP = "udp"
	transportTCP = "tcp"
)

// packetOverhead is what we leave free in a gossip packet for memberlist's own headers, so a change that
// passes our size check also fits the packet memberlist builds around it.
const packetOverhead = 64

// largeQueueSize bounds the changes waiting to be sent over TCP; beyond it changes are dropped and left to
// push-pull, rather than blocking the gossip receive loop that may be the one queueing them.
const largeQueueSize = 256

var errMalformed = errors.New("malformed message")

func encodeMessage(key, codec string, value []byte) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(key)+len(codec)+len(value))
	b = append(b, messageFormat)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(len(codec)))
	b = append(b, codec...)
	return append(b, value...)
}

// decodeMessage splits a message; value aliases b.
func decodeMessage(b []byte) (key, codec string, value []byte, err error) {
	if len(b) == 0 || b[0] != messageFormat {
		return "", "", nil, fmt.Errorf("%w: unknown format", errMalformed)
	}
	b = b[1:]
	key, b, err = readName(b)
	if err != nil {
		return "", "", nil, fmt.Errorf("key: %w", err)
	}
	codec, b, err = readName(b)
	if err != nil {
		return "", "", nil, fmt.Errorf("codec: %w", err)
	}
	return key, codec, b, nil
}

func readName(b []byte) (string, []byte, error) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > maxNameLen || n > uint64(len(b)-size) {
		return "", nil, fmt.Errorf("%w: bad length", errMalformed)
	}
	b = b[size:]
	return string(b[:n]), b[n:], nil
}

func encodeState(msgs [][]byte) []byte {
	size := 1
	for _, m := range msgs {
		size += binary.MaxVarintLen64 + len(m)
	}
	b := make([]byte, 0, size)
	b = append(b, stateFormat)
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

// decodeState splits a full state into messages that alias b.
func decodeState(b []byte) ([][]byte, error) {
	if len(b) == 0 || b[0] != stateFormat {
		return nil, fmt.Errorf("%w: unknown state format", errMalformed)
	}
	b = b[1:]
	var msgs [][]byte
	for len(b) > 0 {
		n, size := binary.Uvarint(b)
		if size <= 0 || n > uint64(len(b)-size) {
			return nil, fmt.Errorf("%w: bad message length in state", errMalformed)
		}
		b = b[size:]
		msgs = append(msgs, b[:n:n])
		b = b[n:]
	}
	return msgs, nil
}

// broadcast is a change queued for gossip. content lists the entries the change carries (sorted), so a
// later change of the same key that carries all of them replaces it in the queue: local state only moves
// forward, so the later change holds versions at least as new for every one of those entries.
type broadcast struct {
	key     string
	content []string
	msg     []byte

	seq       uint64 // order of queueing, never reused
	transmits int
}

// replaces reports whether b, queued after older, makes older redundant.
func (b *broadcast) replaces(older *broadcast) bool {
	return older.key == b.key && containsAll(b.content, older.content)
}

// gossipQueue holds the changes waiting to be piggybacked on memberlist's gossip packets; each is sent
// retransmitLimit times, fewest-sent first. It replaces memberlist's TransmitLimitedQueue, which resets its
// id counter whenever an invalidation empties it: a later change with the same transmit count and length
// then reuses a queued change's id and silently replaces it, leaving it to the next push-pull.
type gossipQueue struct {
	numNodes func() int
	factor   int

	mu    sync.Mutex
	items []*broadcast // fewest transmits first, newest first among equals
	seq   uint64
}

func (q *gossipQueue) push(b *broadcast) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	b.seq, b.transmits = q.seq, 0
	q.items = slices.DeleteFunc(q.items, b.replaces)
	q.items = slices.Insert(q.items, 0, b)
}

// len returns the number of changes still to be sent.
func (q *gossipQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// take returns the changes that fit in limit bytes, overhead counted per change, and drops those sent
// often enough.
func (q *gossipQueue) take(overhead, limit int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	maxTransmits := retransmitLimit(q.factor, q.numNodes())
	var out [][]byte
	used := 0
	for _, b := range q.items {
		n := overhead + len(b.msg)
		if used+n > limit {
			continue
		}
		used += n
		out = append(out, b.msg)
		b.transmits++
	}
	if len(out) == 0 {
		return nil
	}
	q.items = slices.DeleteFunc(q.items, func(b *broadcast) bool { return b.transmits >= maxTransmits })
	slices.SortStableFunc(q.items, func(a, b *broadcast) int {
		if c := cmp.Compare(a.transmits, b.transmits); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	return out
}

// containsAll reports whether every element of sub is in super; both are sorted.
func containsAll(super, sub []string) bool {
	i := 0
	for _, s := range sub {
		for i < len(super) && super[i] < s {
			i++
		}
		if i == len(super) || super[i] != s {
			return false
		}
	}
	return true
}

// broadcast spreads a change to other members. Changes that fit a gossip packet go through memberlist's
// queue, which retransmits each to random members; larger ones would never leave that queue, so they are
// sent over TCP instead.
func (k *KV) broadcast(key string, content []string, msg []byte) {
	if len(msg) <= k.maxPacketMessage {
		content = slices.Clone(content)
		slices.Sort(content)
		k.broadcasts.push(&broadcast{key: key, content: content, msg: msg})
		return
	}
	select {
	case k.largeMessages <- msg:
	default:
		k.metrics.droppedBroadcasts.Inc()
		k.logger.Warn("dropping large change, send queue full; push-pull will repair", "key", key)
	}
}

// sendLargeMessages sends each large change over TCP to as many random members as a gossiped change
// would reach; those that learn something from it pass it on the same way, so it spreads like gossip.
func (k *KV) sendLargeMessages(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case msg := <-k.largeMessages:
			ml := k.ml.Load()
			if ml == nil {
				continue
			}
			peers := k.randomPeers(ml, retransmitLimit(k.cfg.RetransmitFactor, ml.NumMembers()))
			for _, n := range peers {
				if err := ml.SendReliable(n, msg); err != nil {
					k.logger.Debug("send change over tcp", "member", n.Name, "err", err)
					continue
				}
				k.metrics.sentBroadcasts.WithLabelValues(transportTCP).Inc()
			}
		}
	}
}

// randomPeers returns up to n alive members other than this one, in random order.
func (k *KV) randomPeers(ml *hashicorp.Memberlist, n int) []*hashicorp.Node {
	self := ml.LocalNode().Name
	members := ml.Members()
	peers := members[:0]
	for _, m := range members {
		if m.Name != self {
			peers = append(peers, m)
		}
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	return peers[:min(n, len(peers))]
}

// retransmitLimit is how many sends memberlist makes of each gossiped change in a cluster of n members.
func retransmitLimit(factor, n int) int {
	return factor * int(math.Ceil(math.Log10(float64(n+1))))
}

package memberlist

import (
	"bytes"

	hashicorp "github.com/hashicorp/memberlist"
)

// delegate connects memberlist to the KV's store: it is how changes leave (GetBroadcasts, LocalState) and
// arrive (NotifyMsg, MergeRemoteState). It is a separate type so these callbacks stay off KV's API.
type delegate struct {
	kv *KV
}

var _ hashicorp.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate. Members carry no metadata: everything shared is a KV value.
func (d *delegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg implements memberlist.Delegate: a change gossiped or sent to us. memberlist may reuse msg
// after we return, and a codec may keep slices of what it decodes, hence the copy.
func (d *delegate) NotifyMsg(msg []byte) {
	d.kv.metrics.receivedBroadcasts.Inc()
	if err := d.kv.mergeReceived(bytes.Clone(msg)); err != nil {
		d.kv.metrics.invalidBroadcasts.Inc()
		d.kv.logger.Warn("dropping received change", "err", err)
	}
}

// GetBroadcasts implements memberlist.Delegate: queued changes that fit in the packet being built.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.kv.broadcasts.take(overhead, limit)
	d.kv.metrics.sentBroadcasts.WithLabelValues(transportUDP).Add(float64(len(msgs)))
	return msgs
}

// LocalState implements memberlist.Delegate: every value in full, for a push-pull exchange or a join.
func (d *delegate) LocalState(join bool) []byte {
	values := d.kv.encodeAll()
	msgs := make([][]byte, 0, len(values))
	for _, v := range values {
		msgs = append(msgs, encodeMessage(v.key, v.codec, v.data))
	}
	return encodeState(msgs)
}

// MergeRemoteState implements memberlist.Delegate: the other side's LocalState. Each value is merged as if
// it had been gossiped, so whatever was new to us is passed on.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	d.kv.metrics.fullStateSyncs.Inc()
	if len(buf) == 0 { // a member with nothing to share
		return
	}
	msgs, err := decodeState(bytes.Clone(buf))
	if err != nil {
		d.kv.metrics.invalidBroadcasts.Inc()
		d.kv.logger.Warn("dropping received full state", "err", err)
		return
	}
	for _, msg := range msgs {
		if err := d.kv.mergeReceived(msg); err != nil {
			d.kv.metrics.invalidBroadcasts.Inc()
			d.kv.logger.Warn("dropping value of received full state", "err", err)
		}
	}
}

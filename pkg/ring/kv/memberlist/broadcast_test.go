package memberlist

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMessage_RoundTrip(t *testing.T) {
	msg := encodeMessage("ring", "ring.Desc/json", []byte(`{"instances":{}}`))
	key, codec, value, err := decodeMessage(msg)
	require.NoError(t, err)
	require.Equal(t, "ring", key)
	require.Equal(t, "ring.Desc/json", codec)
	require.Equal(t, []byte(`{"instances":{}}`), value)

	msgs, err := decodeState(encodeState([][]byte{msg, encodeMessage("", "", nil)}))
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, msg, msgs[0])

	msgs, err = decodeState(encodeState(nil))
	require.NoError(t, err)
	require.Empty(t, msgs)
}

func TestMessage_RejectsMalformedInput(t *testing.T) {
	good := encodeMessage("key", "codec", []byte("v"))
	for name, b := range map[string][]byte{
		"empty":           nil,
		"unknown format":  append([]byte{99}, good[1:]...),
		"truncated key":   good[:3],
		"key length huge": {messageFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated codec": good[:len(good)-4],
		"bad varint":      {messageFormat, 0x80},
		"name over limit": append([]byte{messageFormat, 0x81, 0x08}, make([]byte, 1025)...),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := decodeMessage(b)
			require.True(t, errors.Is(err, errMalformed), "got %v", err)
		})
	}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"unknown format":    {99},
		"truncated message": {stateFormat, 10, 1, 2},
	} {
		t.Run("state "+name, func(t *testing.T) {
			_, err := decodeState(b)
			require.ErrorIs(t, err, errMalformed)
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage("ring", "ring.Desc/json", []byte("{}")))
	f.Add(encodeState([][]byte{encodeMessage("k", "c", []byte("v"))}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever decodes must survive a re-encoding unchanged (the input may use non-minimal varints, so
		// compare decoded parts, not bytes).
		if key, codec, value, err := decodeMessage(b); err == nil {
			key2, codec2, value2, err := decodeMessage(encodeMessage(key, codec, value))
			require.NoError(t, err)
			require.Equal(t, key, key2)
			require.Equal(t, codec, codec2)
			require.True(t, bytes.Equal(value, value2))
		}
		if msgs, err := decodeState(b); err == nil {
			msgs2, err := decodeState(encodeState(msgs))
			require.NoError(t, err)
			require.Equal(t, len(msgs), len(msgs2))
			for i := range msgs {
				require.True(t, bytes.Equal(msgs[i], msgs2[i]))
			}
		}
	})
}

func TestBroadcast_LaterChangeCoveringEarlierOneReplacesIt(t *testing.T) {
	tests := map[string]struct {
		newer, older *broadcast
		want         bool
	}{
		"same entries":          {&broadcast{key: "k", content: []string{"a"}}, &broadcast{key: "k", content: []string{"a"}}, true},
		"superset":              {&broadcast{key: "k", content: []string{"a", "b", "c"}}, &broadcast{key: "k", content: []string{"a", "c"}}, true},
		"missing one entry":     {&broadcast{key: "k", content: []string{"a", "c"}}, &broadcast{key: "k", content: []string{"a", "b"}}, false},
		"disjoint":              {&broadcast{key: "k", content: []string{"b"}}, &broadcast{key: "k", content: []string{"a"}}, false},
		"other key":             {&broadcast{key: "k", content: []string{"a"}}, &broadcast{key: "j", content: []string{"a"}}, false},
		"older carries nothing": {&broadcast{key: "k", content: []string{"a"}}, &broadcast{key: "k"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.newer.replaces(tc.older))
		})
	}
}

func TestBroadcast_QueueKeepsOnlyTheLatestChangeOfAnEntry(t *testing.T) {
	k := newTestKV(t, testConfig())
	c := ringClient(k)
	for range 3 {
		require.NoError(t, c.CAS(context.Background(), ringKey, addInstance("a")))
	}
	require.Equal(t, 1, k.broadcasts.len())
	require.NoError(t, c.CAS(context.Background(), ringKey, addInstance("b")))
	require.Equal(t, 2, k.broadcasts.len())
}

func TestGossipQueue_ReplacedChangesNeverTakeAnotherOnesPlace(t *testing.T) {
	// memberlist's own queue lost "b" here: emptied by the replacements, it reused an id still queued.
	q := &gossipQueue{numNodes: func() int { return 3 }, factor: 4}
	for range 3 {
		q.push(&broadcast{key: "k", content: []string{"a"}, msg: []byte("change-a")})
	}
	q.push(&broadcast{key: "k", content: []string{"b"}, msg: []byte("change-b")})
	q.push(&broadcast{key: "k", content: []string{"c"}, msg: []byte("change-c")})
	require.Equal(t, 3, q.len())
	require.Equal(t, [][]byte{[]byte("change-c"), []byte("change-b"), []byte("change-a")}, q.take(0, 1000))
}

func TestGossipQueue_SendsEachChangeRetransmitLimitTimesFewestSentFirst(t *testing.T) {
	q := &gossipQueue{numNodes: func() int { return 9 }, factor: 2} // limit 2
	q.push(&broadcast{key: "k", content: []string{"a"}, msg: []byte("aaaa")})
	require.Equal(t, [][]byte{[]byte("aaaa")}, q.take(1, 100))
	q.push(&broadcast{key: "k", content: []string{"b"}, msg: []byte("bbbb")})
	// Room for one: the change not sent yet goes first.
	require.Equal(t, [][]byte{[]byte("bbbb")}, q.take(1, 5))
	require.Equal(t, [][]byte{[]byte("bbbb"), []byte("aaaa")}, q.take(1, 100))
	require.Zero(t, q.len(), "both sent twice")
	require.Nil(t, q.take(1, 100))
}

func TestRetransmitLimit(t *testing.T) {
	require.Equal(t, 4, retransmitLimit(4, 1))
	require.Equal(t, 8, retransmitLimit(4, 10))
	require.Equal(t, 12, retransmitLimit(4, 100))
}

package alertmanager

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestState_RoundTrip(t *testing.T) {
	for _, tc := range []struct{ silences, nflog []byte }{
		{nil, nil},
		{[]byte("s"), nil},
		{nil, []byte("n")},
		{[]byte{0, 1, 2}, []byte{3, 4}},
	} {
		s, n, err := decodeState(encodeState(tc.silences, tc.nflog))
		require.NoError(t, err)
		require.Equal(t, string(tc.silences), string(s))
		require.Equal(t, string(tc.nflog), string(n))
	}
}

func TestState_RejectsOtherBlobs(t *testing.T) {
	good := encodeState([]byte("abc"), []byte("de"))
	for name, b := range map[string][]byte{
		"empty":          nil,
		"other format":   []byte("\x0a\x05hello"),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 'x'),
		"huge length":    binary.AppendUvarint([]byte(stateMagic), 1<<62),
	} {
		_, _, err := decodeState(b)
		require.ErrorIs(t, err, errBadState, name)
	}
}

func TestSortRecords_CanonicalOrder(t *testing.T) {
	rec := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	a, b, c := rec("alpha"), rec("b"), rec("charlie-charlie")
	join := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	require.Equal(t, sortRecords(join(c, a, b)), sortRecords(join(b, c, a)))
	require.Len(t, sortRecords(join(c, a, b)), len(join(a, b, c)))
	broken := append(join(a, b), 0x7f)
	require.Equal(t, broken, sortRecords(broken), "a stream that does not parse is kept as it is")
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState([]byte("abc"), []byte("de")))
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, n, err := decodeState(b)
		if err == nil {
			require.Equal(t, b, encodeState(s, n))
		}
		sortRecords(b)
	})
}

package distributor

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

func TestEncodedEntries_RequestEqualsMarshallingTheSubset(t *testing.T) {
	series := []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "a"}}, Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "b"}, {Name: "x", Value: "y"}}, Samples: []prompb.Sample{{Timestamp: 2, Value: 2}, {Timestamp: 3, Value: 3}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "c"}}},
	}
	metadata := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "a", Help: "h"}}
	e, err := encodeEntries(series, metadata)
	require.NoError(t, err)
	for _, indexes := range [][]int{{0, 1, 2, 3}, {1}, {0, 2}, {3}, {}} {
		var want prompb.WriteRequest
		for _, i := range indexes {
			if i < len(series) {
				want.Timeseries = append(want.Timeseries, series[i])
			} else {
				want.Metadata = append(want.Metadata, metadata[i-len(series)])
			}
		}
		var got prompb.WriteRequest
		require.NoError(t, got.Unmarshal(e.request(indexes)))
		wantRaw, err := want.Marshal()
		require.NoError(t, err)
		gotRaw, err := got.Marshal()
		require.NoError(t, err)
		require.Equal(t, wantRaw, gotRaw, "indexes %v", indexes)
	}
}

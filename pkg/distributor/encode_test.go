package distributor

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/remotewrite"
)

func TestEncodedEntries_RequestEqualsMarshallingTheSubset(t *testing.T) {
	series := []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "a"}}, Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "b"}, {Name: "x", Value: "y"}}, Samples: []prompb.Sample{{Timestamp: 2, Value: 2}, {Timestamp: 3, Value: 3}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "c"}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "d"}}, Samples: []prompb.Sample{{Timestamp: 4, Value: 4}}},
	}
	metadata := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "a", Help: "h"}}

	// As received: decoded from a body, series 1 then changed (a sample dropped) and so encoded again.
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	require.NoError(t, err)
	decoder := remotewrite.GetDecoder()
	defer decoder.Release()
	decoded, err := decoder.Decode(raw)
	require.NoError(t, err)
	decoded.Timeseries[1].Samples = decoded.Timeseries[1].Samples[:1]
	fields := make([]remotewrite.FieldRange, len(series))
	for i := range fields {
		if i != 1 {
			fields[i] = decoder.SeriesField(i)
		}
	}
	want := append([]prompb.TimeSeries(nil), series...)
	want[1].Samples = want[1].Samples[:1]
	received, err := encodeEntries(mem.SliceBuffer(raw), decoded.Timeseries, fields, nil, metadata)
	require.NoError(t, err)

	// Built by Go code: everything encoded.
	built, err := encodeEntries(nil, want, nil, nil, metadata)
	require.NoError(t, err)

	for name, e := range map[string]*encodedEntries{"received": received, "built": built} {
		for _, indexes := range [][]int{{0, 1, 2, 3, 4}, {1}, {0, 2, 3}, {2, 3}, {4}, {}} {
			var wantReq prompb.WriteRequest
			for _, i := range indexes {
				if i < len(want) {
					wantReq.Timeseries = append(wantReq.Timeseries, want[i])
				} else {
					wantReq.Metadata = append(wantReq.Metadata, metadata[i-len(want)])
				}
			}
			wantRaw, err := wantReq.Marshal()
			require.NoError(t, err)

			req := e.request(indexes)
			require.Equal(t, wantRaw, req.WriteRequest(), "%s: indexes %v", name, indexes)
			require.Equal(t, len(wantRaw), req.Len())

			// What gRPC sends is the PushRequest holding those bytes.
			sent, err := ingesterpb.PushCodec.Marshal(req)
			require.NoError(t, err)
			var pr ingesterpb.PushRequest
			require.NoError(t, ingesterpb.PushCodec.Unmarshal(sent, &pr))
			sent.Free()
			require.Equal(t, wantRaw, append([]byte{}, pr.WriteRequest...), "%s: indexes %v sent", name, indexes)
		}
	}
}

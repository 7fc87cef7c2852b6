package storegateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// addExemplars writes an exemplar file into the block in dir with, for each series, exemplars at the
// block's start plus each offset, and records their count in its meta.json.
func addExemplars(t *testing.T, dir string, lsets []labels.Labels, offsets ...int64) {
	t.Helper()
	meta, err := blockstore.ReadMetaFromDir(dir)
	require.NoError(t, err)
	w, err := blockstore.NewExemplarWriter(dir)
	require.NoError(t, err)
	for _, lset := range lsets {
		var es []exemplar.Exemplar
		for _, off := range offsets {
			ts := meta.MinTime + off
			es = append(es, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%s-%d", lset.Get("job"), ts)), Value: float64(ts), Ts: ts, HasTs: true})
		}
		require.NoError(t, w.Append(lset, es))
	}
	require.NoError(t, w.Close())
	meta.Strata.Exemplars = w.Count()
	require.NoError(t, meta.WriteToDir(dir))
}

// callExemplars runs a QueryExemplars request and renders the answer as "series trace_id@ts" lines.
func callExemplars(t *testing.T, c storegatewaypb.StoreGatewayClient, tenantID string, req *storegatewaypb.ExemplarsRequest) ([]string, []string, error) {
	t.Helper()
	stream, err := c.QueryExemplars(tenant.NewContext(context.Background(), tenantID), req)
	require.NoError(t, err)
	first, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	require.Empty(t, first.Series, "the first message lists the queried blocks only")
	var (
		got []string
		b   labels.ScratchBuilder
	)
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, first.QueriedBlockIds, nil
		}
		if err != nil {
			return got, first.QueriedBlockIds, err
		}
		for _, s := range resp.Series {
			for _, e := range s.Exemplars {
				got = append(got, fmt.Sprintf("%s %s@%d", seriespb.ToLabels(&b, s.Labels), seriespb.ToLabels(&b, e.Labels).Get("trace_id"), e.TimestampMs))
			}
		}
	}
}

func sets(selectors ...[]*labels.Matcher) []*seriespb.LabelMatchers {
	out := make([]*seriespb.LabelMatchers, 0, len(selectors))
	for _, ms := range selectors {
		out = append(out, &seriespb.LabelMatchers{Matchers: seriespb.FromLabelMatchers(ms)})
	}
	return out
}

// The exemplar files of the requested blocks answer QueryExemplars: series matching a set, exemplars in
// the range, merged across blocks, each once; only the tenant's own blocks.
func TestQueryExemplars_ServesTheBlocksExemplarFiles(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	hour := time.Hour.Milliseconds()
	upA := labels.FromStrings("__name__", "up", "job", "a")
	upB := labels.FromStrings("__name__", "up", "job", "b")
	dirs := createBlocks(t, makeSeries(0, 9*hour, upA, upB))
	require.Len(t, dirs, 3) // [0, 2h), [2h, 4h), [4h, 6h)
	addExemplars(t, dirs[0], []labels.Labels{upA, upB}, 60_000, 600_000)
	addExemplars(t, dirs[1], []labels.Labels{upA}, 60_000)
	// dirs[2] has no exemplar file.
	ids := uploadBlocks(t, bkt, "tenant-1", dirs)
	idx := writeBucketIndex(t, bkt, "tenant-1")
	hasExemplars := map[string]bool{}
	for _, b := range idx.Blocks {
		hasExemplars[filepath.Base(b.ID.String())] = b.HasExemplars
	}
	require.Equal(t, map[string]bool{ids[0].String(): true, ids[1].String(): true, ids[2].String(): false}, hasExemplars)
	// Another tenant's blocks with exemplars of the same series.
	other := createBlocks(t, makeSeries(0, 5*hour, upA))
	addExemplars(t, other[0], []labels.Labels{upA}, 120_000)
	otherIDs := uploadBlocks(t, bkt, "tenant-2", other)
	writeBucketIndex(t, bkt, "tenant-2")

	client := serveGRPC(t, startStoreGateway(t, testConfig(t), bkt))
	up := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}
	jobA := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")}
	jobB := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "b")}

	got, queried, err := callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(ids)})
	require.NoError(t, err)
	require.ElementsMatch(t, idStrings(ids), queried)
	require.Equal(t, []string{
		`{__name__="up", job="a"} a-60000@60000`,
		`{__name__="up", job="a"} a-600000@600000`,
		fmt.Sprintf(`{__name__="up", job="a"} a-%d@%d`, 2*hour+60_000, 2*hour+60_000),
		`{__name__="up", job="b"} b-60000@60000`,
		`{__name__="up", job="b"} b-600000@600000`,
	}, got)

	// Range and matcher sets: either set selects a series.
	got, _, err = callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 300_000, MaxTimeMs: 3 * hour, MatcherSets: sets(jobA, jobB), BlockIds: idStrings(ids)})
	require.NoError(t, err)
	require.Equal(t, []string{
		`{__name__="up", job="a"} a-600000@600000`,
		fmt.Sprintf(`{__name__="up", job="a"} a-%d@%d`, 2*hour+60_000, 2*hour+60_000),
		`{__name__="up", job="b"} b-600000@600000`,
	}, got)

	// Another tenant's block IDs answer nothing, and its own answer has only its exemplars.
	got, queried, err = callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(otherIDs)})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, queried)
	got, _, err = callExemplars(t, client, "tenant-2", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(otherIDs)})
	require.NoError(t, err)
	require.Equal(t, []string{`{__name__="up", job="a"} a-120000@120000`}, got)

	// The series limit stops the answer with the limit's status.
	_, _, err = callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(ids), Limits: &seriespb.FetchLimits{MaxSeries: 1}})
	le, ok := seriespb.LimitErrorOf(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, "max_fetched_series_per_query", le.Key)

	// The exemplar limit stops the read with its status: the merge would hold them all.
	_, _, err = callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(ids), Limits: &seriespb.FetchLimits{MaxExemplars: 4}})
	le, ok = seriespb.LimitErrorOf(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, "max_fetched_exemplars_per_query", le.Key)
	_, _, err = callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MinTimeMs: 0, MaxTimeMs: 10 * hour, MatcherSets: sets(up), BlockIds: idStrings(ids), Limits: &seriespb.FetchLimits{MaxExemplars: 5}})
	require.NoError(t, err, "5 exemplars are within 5")

	// Hostile requests are refused as invalid.
	tooMany := make([][]*labels.Matcher, seriespb.MaxExemplarMatcherSets+1)
	for i := range tooMany {
		tooMany[i] = up
	}
	for name, req := range map[string]*storegatewaypb.ExemplarsRequest{
		"too many sets":  {MaxTimeMs: hour, MatcherSets: sets(tooMany...), BlockIds: idStrings(ids)},
		"empty set":      {MaxTimeMs: hour, MatcherSets: []*seriespb.LabelMatchers{{}}, BlockIds: idStrings(ids)},
		"bad regex":      {MaxTimeMs: hour, MatcherSets: []*seriespb.LabelMatchers{{Matchers: []*seriespb.LabelMatcher{{Type: seriespb.MatchType_REGEX_MATCH, Name: "job", Value: "("}}}}},
		"inverted range": {MinTimeMs: hour, MaxTimeMs: 0, MatcherSets: sets(up)},
		"bad block ID":   {MaxTimeMs: hour, MatcherSets: sets(up), BlockIds: []string{"../../tenant-2/x"}},
	} {
		_, _, err := callExemplars(t, client, "tenant-1", req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), name)
	}
}

// A corrupt exemplar file fails the request with Internal, not the process; a missing one is no
// exemplars.
func TestQueryExemplars_CorruptFileIsAnError(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	upA := labels.FromStrings("__name__", "up", "job", "a")
	dirs := createBlocks(t, makeSeries(0, 5*time.Hour.Milliseconds(), upA))
	addExemplars(t, dirs[0], []labels.Labels{upA}, 60_000)
	ids := uploadBlocks(t, bkt, "tenant-1", dirs[:1])
	writeBucketIndex(t, bkt, "tenant-1")
	require.NoError(t, bkt.Upload(context.Background(), "tenant-1/"+ids[0].String()+"/"+blockstore.ExemplarsFilename, strings.NewReader("STRATAEX\x01garbage")))
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), bkt))
	_, _, err := callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MaxTimeMs: time.Hour.Milliseconds(), BlockIds: idStrings(ids),
		MatcherSets: sets([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")})})
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)

	// A file lost from the bucket leaves the block's exemplars out, without failing the request.
	require.NoError(t, bkt.Delete(context.Background(), "tenant-1/"+ids[0].String()+"/"+blockstore.ExemplarsFilename))
	got, queried, err := callExemplars(t, client, "tenant-1", &storegatewaypb.ExemplarsRequest{MaxTimeMs: time.Hour.Milliseconds(), BlockIds: idStrings(ids),
		MatcherSets: sets([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")})})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, idStrings(ids), queried)
}

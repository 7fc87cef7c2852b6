package ruler

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

func TestPushAppender_CommitsOnePushUnderTheTenant(t *testing.T) {
	p := &capturingPusher{}
	app := PusherAppendable(p)("tenant-a").Appender(context.Background())
	_, err := app.Append(0, labels.FromStrings("__name__", "a", "x", "1"), 1000, 1.5)
	require.NoError(t, err)
	_, err = app.AppendHistogram(0, labels.FromStrings("__name__", "h"), 2000, &histogram.Histogram{Count: 3, Sum: 4, Schema: 0}, nil)
	require.NoError(t, err)
	_, err = app.AppendHistogram(0, labels.FromStrings("__name__", "fh"), 3000, nil, &histogram.FloatHistogram{Count: 2, Sum: 1})
	require.NoError(t, err)
	_, err = app.AppendHistogram(0, labels.FromStrings("__name__", "none"), 3000, nil, nil)
	require.Error(t, err)
	require.Empty(t, p.series, "nothing is pushed before Commit")
	require.NoError(t, app.Commit())

	require.Equal(t, 1, p.pushes)
	require.Len(t, p.series, 3)
	for _, s := range p.series {
		require.Equal(t, "tenant-a", s.tenant)
	}
	require.Equal(t, []prompb.Sample{{Timestamp: 1000, Value: 1.5}}, p.series[0].series.Samples)
	require.Equal(t, map[string]string{"__name__": "a", "x": "1"}, labelsOf(p.series[0].series))
	require.Equal(t, uint64(3), p.series[1].series.Histograms[0].GetCountInt())
	require.Equal(t, 2.0, p.series[2].series.Histograms[0].GetCountFloat())

	_, err = app.Append(0, labels.FromStrings("__name__", "late"), 1, 1)
	require.ErrorIs(t, err, errAppenderDone)
	require.ErrorIs(t, app.Commit(), errAppenderDone)
}

func TestPushAppender_RollbackAndEmptyCommitPushNothing(t *testing.T) {
	p := &capturingPusher{}
	appendable := PusherAppendable(p)("tenant-a")
	app := appendable.Appender(context.Background())
	_, err := app.Append(0, labels.FromStrings("__name__", "a"), 1, 1)
	require.NoError(t, err)
	require.NoError(t, app.Rollback())
	require.ErrorIs(t, app.Commit(), errAppenderDone)
	require.NoError(t, appendable.Appender(context.Background()).Commit())
	require.Zero(t, p.pushes)
}

type failingPusher struct{}

func (failingPusher) Push(context.Context, *prompb.WriteRequest) error {
	return errors.New("ingesters down")
}

func TestPushAppender_CommitReturnsThePushError(t *testing.T) {
	app := PusherAppendable(failingPusher{})("tenant-a").Appender(context.Background())
	_, err := app.Append(0, labels.FromStrings("__name__", "a"), 1, 1)
	require.NoError(t, err)
	require.ErrorContains(t, app.Commit(), "ingesters down")
}

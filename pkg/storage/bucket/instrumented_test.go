package bucket

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/strata-metrics/strata/pkg/storage/bucket/buckettest"
)

// opCounts reads one series of each strata_bucket_* metric from reg.
type opCounts struct {
	total, failures float64
	observations    uint64
}

func readOpCounts(t *testing.T, reg prometheus.Gatherer, op, component string) opCounts {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var c opCounts
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, op, component) {
				continue
			}
			switch mf.GetName() {
			case "strata_bucket_operations_total":
				c.total = m.GetCounter().GetValue()
			case "strata_bucket_operation_failures_total":
				c.failures = m.GetCounter().GetValue()
			case "strata_bucket_operation_duration_seconds":
				c.observations = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return c
}

func hasLabels(m *dto.Metric, op, component string) bool {
	var gotOp, gotComponent string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "operation":
			gotOp = l.GetValue()
		case "component":
			gotComponent = l.GetValue()
		}
	}
	return gotOp == op && gotComponent == component
}

func TestInstrumentedBucket_CountsEveryOperationPerComponent(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Two components on one registerer: the second client reuses the first one's collectors.
	ingester := newFilesystemClient(t, reg, "ingester")
	compactor := newFilesystemClient(t, reg, "compactor")
	ctx := t.Context()

	// Every series exists at zero before any operation.
	for _, op := range operations {
		require.Equal(t, opCounts{}, readOpCounts(t, reg, op, "ingester"), op)
	}

	upload(t, ingester, "obj", "0123456789")
	upload(t, ingester, "dir/obj", "x")
	_ = readObject(t, ingester, "obj")
	rc, err := ingester.GetRange(ctx, "obj", 2, 3)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	_, err = ingester.Exists(ctx, "obj")
	require.NoError(t, err)
	_, err = ingester.Attributes(ctx, "obj")
	require.NoError(t, err)
	_ = listNames(t, ingester, "")
	require.NoError(t, ingester.IterWithAttributes(ctx, "", func(objstore.IterObjectAttributes) error { return nil }))
	require.NoError(t, ingester.Delete(ctx, "obj"))
	_, err = compactor.Exists(ctx, "obj")
	require.NoError(t, err)

	for op, want := range map[string]float64{
		OpUpload: 2, OpGet: 1, OpGetRange: 1, OpExists: 1, OpAttributes: 1, OpIter: 2, OpDelete: 1,
	} {
		require.Equal(t, opCounts{total: want, observations: uint64(want)}, readOpCounts(t, reg, op, "ingester"), op)
	}
	require.Equal(t, opCounts{total: 1, observations: 1}, readOpCounts(t, reg, OpExists, "compactor"))
	require.Equal(t, opCounts{}, readOpCounts(t, reg, OpUpload, "compactor"))
}

func TestInstrumentedBucket_CountsFailures(t *testing.T) {
	reg := prometheus.NewRegistry()
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	outage := buckettest.NewErrorInjectedBucket(fs)
	metrics, err := newOperationMetrics(reg)
	require.NoError(t, err)
	bkt := newInstrumentedBucket(outage, metrics, "store-gateway")
	ctx := t.Context()
	upload(t, bkt, "obj", "x")

	outage.SetFailing(true)
	require.Error(t, bkt.Upload(ctx, "obj2", strings.NewReader("x")))
	_, err = bkt.Get(ctx, "obj")
	require.Error(t, err)
	_, err = bkt.GetRange(ctx, "obj", 0, 1)
	require.Error(t, err)
	_, err = bkt.Exists(ctx, "obj")
	require.Error(t, err)
	_, err = bkt.Attributes(ctx, "obj")
	require.Error(t, err)
	require.Error(t, bkt.Iter(ctx, "", func(string) error { return nil }))
	require.Error(t, bkt.Delete(ctx, "obj"))

	for op, want := range map[string]opCounts{
		OpUpload:     {total: 2, failures: 1, observations: 2},
		OpGet:        {total: 1, failures: 1, observations: 1},
		OpGetRange:   {total: 1, failures: 1, observations: 1},
		OpExists:     {total: 1, failures: 1, observations: 1},
		OpAttributes: {total: 1, failures: 1, observations: 1},
		OpIter:       {total: 1, failures: 1, observations: 1},
		OpDelete:     {total: 1, failures: 1, observations: 1},
	} {
		require.Equal(t, want, readOpCounts(t, reg, op, "store-gateway"), op)
	}
}

func TestInstrumentedBucket_AnswersAreNotFailures(t *testing.T) {
	reg := prometheus.NewRegistry()
	bkt := newFilesystemClient(t, reg, "querier")
	upload(t, bkt, "a", "x")
	upload(t, bkt, "b", "x")

	// A missing object is an answer, not an object store fault.
	_, err := bkt.Get(t.Context(), "missing")
	require.True(t, bkt.IsObjNotFoundErr(err))
	require.Equal(t, opCounts{total: 1, observations: 1}, readOpCounts(t, reg, OpGet, "querier"))

	// The caller stopping an iteration is not a failure either.
	stop := errors.New("found what I wanted")
	err = bkt.Iter(t.Context(), "", func(string) error { return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, opCounts{total: 1, observations: 1}, readOpCounts(t, reg, OpIter, "querier"))

	// Nor is a cancelled request.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, bkt.Upload(ctx, "c", strings.NewReader("x")), context.Canceled)
	require.Equal(t, opCounts{total: 3, observations: 3}, readOpCounts(t, reg, OpUpload, "querier"))
}

func TestInstrumentedBucket_GetIsTimedUntilClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	bkt := newFilesystemClient(t, reg, "compactor")
	upload(t, bkt, "obj", "0123456789")

	rc, err := bkt.Get(t.Context(), "obj")
	require.NoError(t, err)
	require.Equal(t, opCounts{total: 1}, readOpCounts(t, reg, OpGet, "compactor"), "not observed while open")

	size, err := objstore.TryToGetSize(rc)
	require.NoError(t, err)
	require.EqualValues(t, 10, size, "the provider's object size shows through")

	_, err = io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	_ = rc.Close() // a second close must not observe the operation again
	require.Equal(t, opCounts{total: 1, observations: 1}, readOpCounts(t, reg, OpGet, "compactor"))
}

func TestInstrumentedBucket_ReadErrorIsFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := newOperationMetrics(reg)
	require.NoError(t, err)
	broken := errors.New("connection reset")
	bkt := newInstrumentedBucket(brokenReaderBucket{Bucket: objstore.NewInMemBucket(), err: broken}, metrics, "ingester")

	rc, err := bkt.GetRange(t.Context(), "obj", 0, 10)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, broken)
	require.NoError(t, rc.Close())
	require.Equal(t, opCounts{total: 1, failures: 1, observations: 1}, readOpCounts(t, reg, OpGetRange, "ingester"))
}

// brokenReaderBucket opens every object and fails while reading it, like a connection dropped mid-body.
type brokenReaderBucket struct {
	objstore.Bucket
	err error
}

func (b brokenReaderBucket) GetRange(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return io.NopCloser(&failingReader{err: b.err}), nil
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestNewOperationMetrics_ConflictingCollectorIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Someone else registered the name with other labels: reusing it would panic later, so refuse now.
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_bucket_operations_total", Help: "other",
	}, []string{"op"}))
	_, err := newOperationMetrics(reg)
	require.ErrorContains(t, err, "register bucket metrics")
}

func TestNewOperationMetrics_NilRegisterer(t *testing.T) {
	m, err := newOperationMetrics(nil)
	require.NoError(t, err)
	require.NotNil(t, m.total)
}

package bucket

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestErrorInjectedBucket_FailsOnlyWhileFailing(t *testing.T) {
	bkt := NewErrorInjectedBucket(objstore.NewInMemBucket())
	ctx := t.Context()
	upload(t, bkt, "obj", "x")

	bkt.SetFailing(true)
	// In order: the delete must come last once the outage has ended.
	checks := []struct {
		op    string
		check func() error
	}{
		{OpUpload, func() error { return bkt.Upload(ctx, "obj", strings.NewReader("y")) }},
		{OpGet, func() error {
			_, err := bkt.Get(ctx, "obj")
			return err
		}},
		{OpGetRange, func() error {
			_, err := bkt.GetRange(ctx, "obj", 0, 1)
			return err
		}},
		{OpExists, func() error {
			_, err := bkt.Exists(ctx, "obj")
			return err
		}},
		{OpAttributes, func() error {
			_, err := bkt.Attributes(ctx, "obj")
			return err
		}},
		{OpIter, func() error { return bkt.Iter(ctx, "", func(string) error { return nil }) }},
		{"iter_with_attributes", func() error {
			return bkt.IterWithAttributes(ctx, "", func(objstore.IterObjectAttributes) error { return nil })
		}},
		{OpDelete, func() error { return bkt.Delete(ctx, "obj") }},
	}
	for _, c := range checks {
		err := c.check()
		require.ErrorIs(t, err, ErrInjectedFailure, c.op)
		require.False(t, bkt.IsObjNotFoundErr(err), "%s: an outage is not a missing object", c.op)
	}

	bkt.SetFailing(false)
	for _, c := range checks {
		require.NoError(t, c.check(), c.op)
	}
	ok, err := bkt.Exists(ctx, "obj")
	require.NoError(t, err)
	require.False(t, ok, "the delete above went through once the outage ended")
}

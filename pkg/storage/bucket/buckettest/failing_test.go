package buckettest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestErrorInjectedBucket_FailsOnlyWhileFailing(t *testing.T) {
	bkt := NewErrorInjectedBucket(objstore.NewInMemBucket())
	ctx := t.Context()
	require.NoError(t, bkt.Upload(ctx, "obj", strings.NewReader("x")))

	bkt.SetFailing(true)
	// In order: the delete must come last once the outage has ended.
	checks := []struct {
		op    string
		check func() error
	}{
		{"upload", func() error { return bkt.Upload(ctx, "obj", strings.NewReader("y")) }},
		{"get", func() error {
			_, err := bkt.Get(ctx, "obj")
			return err
		}},
		{"get_range", func() error {
			_, err := bkt.GetRange(ctx, "obj", 0, 1)
			return err
		}},
		{"exists", func() error {
			_, err := bkt.Exists(ctx, "obj")
			return err
		}},
		{"attributes", func() error {
			_, err := bkt.Attributes(ctx, "obj")
			return err
		}},
		{"iter", func() error { return bkt.Iter(ctx, "", func(string) error { return nil }) }},
		{"iter_with_attributes", func() error {
			return bkt.IterWithAttributes(ctx, "", func(objstore.IterObjectAttributes) error { return nil })
		}},
		{"delete", func() error { return bkt.Delete(ctx, "obj") }},
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

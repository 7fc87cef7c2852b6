package blockstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/thanos-io/objstore"
)

const (
	// TombstonesDir holds a tenant's series deletion requests, one object per request.
	TombstonesDir = "tombstones"
	// TombstoneVersion1 is the format written by WriteTombstone.
	TombstoneVersion1 = 1
	// MaxPendingTombstones bounds a tenant's deletion requests not yet applied to its blocks: each one is
	// checked against every series a query reads, so they must stay few.
	MaxPendingTombstones = 64
	// maxTombstoneSelectors bounds the match[] selectors of one request.
	maxTombstoneSelectors = 16
	// maxTombstoneBytes bounds an encoded tombstone, so a corrupt or hostile object cannot exhaust memory.
	maxTombstoneBytes = 64 << 10
)

// selectorParser parses match[] selectors with the default options, as the read API does.
var selectorParser = parser.NewParser(parser.Options{})

// ErrTombstoneCorrupted is wrapped by the errors of tombstones that cannot be decoded.
var ErrTombstoneCorrupted = errors.New("tombstone corrupted")

// Tombstone is a series deletion request: the samples of the series matching any of Selectors, from
// MinTime to MaxTime, are deleted. Queriers hide them at once; the compactor rewrites the blocks holding
// them and then sets DoneAt.
type Tombstone struct {
	// ID is a ULID, so tombstones sort by creation.
	ID ulid.ULID `json:"id"`
	// Selectors are series selectors (`{job="a",instance=~"b.*"}`), as the API's match[] parameters.
	Selectors []string `json:"selectors"`
	// MinTime and MaxTime bound the deleted samples in milliseconds, both inclusive (Prometheus' Delete).
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
	// CreatedAt is when the request was accepted, in unix milliseconds.
	CreatedAt int64 `json:"created_at"`
	// DoneAt is when the compactor found no block holding deleted samples any more, in unix milliseconds;
	// 0 while pending.
	DoneAt int64 `json:"done_at,omitempty"`
	// Version is the format version.
	Version int `json:"version"`

	matchers [][]*labels.Matcher
}

// NewTombstone validates a deletion request and returns its tombstone. Each selector must parse and
// contain a matcher that does not match the empty string (Prometheus' rule, so `{__name__=~".+"}` is the
// explicit way to delete everything).
func NewTombstone(id ulid.ULID, selectors []string, minT, maxT, createdAt int64) (*Tombstone, error) {
	t := &Tombstone{ID: id, Selectors: selectors, MinTime: minT, MaxTime: maxT, CreatedAt: createdAt, Version: TombstoneVersion1}
	if err := t.parse(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tombstone) parse() error {
	switch {
	case len(t.Selectors) == 0:
		return errors.New("at least one match[] selector is required")
	case len(t.Selectors) > maxTombstoneSelectors:
		return fmt.Errorf("%d match[] selectors, at most %d are allowed", len(t.Selectors), maxTombstoneSelectors)
	case t.MinTime > t.MaxTime:
		return fmt.Errorf("end (%d) is before start (%d)", t.MaxTime, t.MinTime)
	}
	t.matchers = make([][]*labels.Matcher, 0, len(t.Selectors))
	for _, s := range t.Selectors {
		// Stored as JSON, which would replace invalid bytes: the request is refused instead.
		if !utf8.ValidString(s) {
			return fmt.Errorf("match[] selector %q is not valid UTF-8", s)
		}
		ms, err := selectorParser.ParseMetricSelector(s)
		if err != nil {
			return fmt.Errorf("invalid match[] selector %q: %w", s, err)
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			return fmt.Errorf("match[] selector %q must contain at least one non-empty matcher; {__name__=~\".+\"} deletes every series", s)
		}
		t.matchers = append(t.matchers, ms)
	}
	return nil
}

// Matchers returns the parsed selectors: a series is deleted when it matches all matchers of any of them.
func (t *Tombstone) Matchers() [][]*labels.Matcher { return t.matchers }

// Matches reports whether the series lset is one the tombstone deletes samples of.
func (t *Tombstone) Matches(lset labels.Labels) bool {
	for _, ms := range t.matchers {
		if matchesAll(ms, lset) {
			return true
		}
	}
	return false
}

// Overlaps reports whether the deleted range overlaps [minT, maxT] (both inclusive).
func (t *Tombstone) Overlaps(minT, maxT int64) bool {
	return t.MinTime <= maxT && minT <= t.MaxTime
}

// Deletes reports whether the tombstone deletes the point at ts of the series lset.
func (t *Tombstone) Deletes(lset labels.Labels, ts int64) bool {
	return t.MinTime <= ts && ts <= t.MaxTime && t.Matches(lset)
}

func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// TombstonePath returns the bucket path of a tombstone, relative to the tenant's bucket.
func TombstonePath(id ulid.ULID) string {
	return path.Join(TombstonesDir, id.String()+".json")
}

// WriteTombstone writes t to the tenant's bucket, replacing the tombstone with the same ID.
func WriteTombstone(ctx context.Context, bkt objstore.Bucket, t *Tombstone) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode tombstone %s: %w", t.ID, err)
	}
	if err := bkt.Upload(ctx, TombstonePath(t.ID), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("upload tombstone %s: %w", t.ID, err)
	}
	return nil
}

// ListTombstones reads every tombstone of the tenant's bucket, oldest first. A tombstone that cannot be
// decoded fails the call: hiding fewer samples than a user deleted is worse than failing a query.
func ListTombstones(ctx context.Context, bkt objstore.BucketReader) ([]*Tombstone, error) {
	var names []string
	err := bkt.Iter(ctx, TombstonesDir+"/", func(name string) error {
		if strings.HasSuffix(name, ".json") {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tombstones: %w", err)
	}
	out := make([]*Tombstone, 0, len(names))
	for _, name := range names {
		t, err := readTombstone(ctx, bkt, name)
		if errors.Is(err, errTombstoneGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Tombstone) int { return a.ID.Compare(b.ID) })
	return out, nil
}

var errTombstoneGone = errors.New("tombstone deleted since the listing")

func readTombstone(ctx context.Context, bkt objstore.BucketReader, name string) (*Tombstone, error) {
	r, err := bkt.Get(ctx, name)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, errTombstoneGone
		}
		return nil, fmt.Errorf("get tombstone %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxTombstoneBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read tombstone %s: %w", name, err)
	}
	if len(b) > maxTombstoneBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTombstoneCorrupted, name, maxTombstoneBytes)
	}
	var t Tombstone
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTombstoneCorrupted, name, err)
	}
	if t.Version != TombstoneVersion1 {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrTombstoneCorrupted, name, t.Version, TombstoneVersion1)
	}
	if err := t.parse(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTombstoneCorrupted, name, err)
	}
	return &t, nil
}

// PendingTombstones returns the tombstones not done yet.
func PendingTombstones(ts []*Tombstone) []*Tombstone {
	var out []*Tombstone
	for _, t := range ts {
		if t.DoneAt == 0 {
			out = append(out, t)
		}
	}
	return out
}

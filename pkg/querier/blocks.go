package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// StoreGatewayClients gives the querier a client for a store-gateway address.
type StoreGatewayClients interface {
	GetStoreGatewayClient(addr string) (storegatewaypb.StoreGatewayClient, error)
}

// maxBlockAttempts is how many store-gateways (replicas of a block) are tried before a query fails.
const maxBlockAttempts = 3

// BlocksQueryable reads the blocks in object storage through store-gateways. It finds the tenant's blocks
// in the bucket index, asks the store-gateways that own each block for it, retries a block that no
// store-gateway answered for on its other replicas, and fails naming the blocks that none answered: a
// query never silently misses a block.
type BlocksQueryable struct {
	indexes *bucketIndexCache
	ring    ring.ReadRing
	clients StoreGatewayClients
	logger  *slog.Logger
	// queryStoreAfter skips blocks holding only data newer than this, which ingesters still have, unless
	// the blocks were uploaded (backfilled): no ingester ever held those.
	queryStoreAfter time.Duration
	now             func() time.Time
}

// NewBlocksQueryable returns a queryable over the blocks of bkt, served by the store-gateways of r. Blocks
// with only data newer than cfg.QueryStoreAfter are read only if they were uploaded rather than shipped by
// ingesters (0 reads every block); a tenant's bucket index is kept for cfg.BucketIndexTTL.
func NewBlocksQueryable(bkt objstore.Bucket, r ring.ReadRing, clients StoreGatewayClients, cfg Config, reg prometheus.Registerer, logger *slog.Logger) *BlocksQueryable {
	return &BlocksQueryable{
		indexes:         newBucketIndexCache(bkt, cfg.BucketIndexTTL, reg),
		ring:            r,
		clients:         clients,
		logger:          logger,
		queryStoreAfter: cfg.QueryStoreAfter,
		now:             time.Now,
	}
}

// Querier implements storage.Queryable.
func (q *BlocksQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &blocksQuerier{BlocksQueryable: q, mint: mint, maxt: maxt}, nil
}

type blocksQuerier struct {
	*BlocksQueryable
	mint, maxt int64
	streams    streamContexts
}

// blocksInRange returns the IDs of the tenant's blocks that overlap [mint, maxt] and should be read.
func (q *blocksQuerier) blocksInRange(ctx context.Context, mint, maxt int64) (string, []ulid.ULID, error) {
	return q.blocksInRangeWhere(ctx, mint, maxt, nil)
}

// blocksInRangeWhere is blocksInRange of the blocks that also pass keep (nil: all).
func (q *blocksQuerier) blocksInRangeWhere(ctx context.Context, mint, maxt int64, keep func(*blockstore.BlockEntry) bool) (string, []ulid.ULID, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return "", nil, err
	}
	idx, err := q.indexes.get(ctx, tenantID)
	if err != nil || idx == nil {
		return tenantID, nil, err
	}
	recent := int64(math.MaxInt64)
	if q.queryStoreAfter > 0 {
		recent = q.now().Add(-q.queryStoreAfter).UnixMilli()
	}
	var ids []ulid.ULID
	for _, b := range blockstore.BlocksToQuery(idx, nil) {
		if b.MinTime > maxt || b.MaxTime <= mint {
			continue
		}
		if b.MinTime > recent && !b.UploadedData {
			continue // ingesters answer for it
		}
		if keep != nil && !keep(b) {
			continue
		}
		ids = append(ids, b.ID)
	}
	return tenantID, ids, nil
}

// blockTries remembers, per block, the store-gateways already asked for it, so that a retry goes to
// another replica.
type blockTries map[ulid.ULID][]string

// forEachBlockOwner asks store-gateways for every block of ids: call is made per store-gateway with the
// blocks assigned to it and returns its answer and the blocks it answered for. Blocks left unanswered are
// retried on replicas not asked yet; the answers of the calls that succeeded are returned once every
// block is answered for, or an error names the blocks that no store-gateway answered for.
func forEachBlockOwner[T any](ctx context.Context, q *blocksQuerier, tenantID string, ids []ulid.ULID, tried blockTries, call func(ctx context.Context, addr string, client storegatewaypb.StoreGatewayClient, blocks []string) (T, []string, error)) ([]T, error) {
	remaining := map[ulid.ULID]struct{}{}
	for _, id := range ids {
		remaining[id] = struct{}{}
	}
	var (
		failures []string
		answers  []T
	)
	for attempt := 0; attempt < maxBlockAttempts && len(remaining) > 0; attempt++ {
		byAddr := map[string][]string{}
		for id := range remaining {
			rs, err := q.ring.Get(ring.BlockToken(tenantID, id), ring.Read, nil)
			if err != nil {
				return answers, fmt.Errorf("find store-gateways of block %s: %w", id, err)
			}
			for _, inst := range rs.Instances {
				if !slices.Contains(tried[id], inst.Addr) {
					tried[id] = append(tried[id], inst.Addr)
					byAddr[inst.Addr] = append(byAddr[inst.Addr], id.String())
					break
				}
			}
		}
		if len(byAddr) == 0 {
			break // every replica was asked already
		}
		var (
			mtx sync.Mutex
			wg  sync.WaitGroup
		)
		for addr, blocks := range byAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var (
					answer   T
					answered []string
				)
				client, err := q.clients.GetStoreGatewayClient(addr)
				if err == nil {
					answer, answered, err = call(ctx, addr, client, blocks)
				}
				mtx.Lock()
				defer mtx.Unlock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", addr, err))
					return
				}
				answers = append(answers, answer)
				for _, a := range answered {
					if id, err := ulid.Parse(a); err == nil {
						delete(remaining, id)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return answers, ctx.Err()
		}
	}
	if len(remaining) == 0 {
		return answers, nil
	}
	// The compactor deletes a deleted tenant's blocks at once, before a cached bucket index expires: the
	// tenant has no data left, not a failure.
	if q.indexes.tenantDeleted(ctx, tenantID) {
		return answers, nil
	}
	missing := make([]string, 0, len(remaining))
	for id := range remaining {
		missing = append(missing, id.String())
	}
	slices.Sort(missing)
	msg := fmt.Sprintf("no store-gateway answered for blocks %s", strings.Join(missing, ", "))
	if len(failures) > 0 {
		msg += " (" + strings.Join(failures, "; ") + ")"
	}
	return answers, errors.New(msg)
}

// Select implements storage.Querier. The store-gateways that own the blocks stream their series, merged as
// they arrive. A store-gateway lists the blocks it answers for before its series, so blocks it does not
// hold are asked of another replica at once; a stream that fails midway is replaced by streams of other
// replicas for its blocks, which start after the last series it delivered. A stream that stops at the
// query's fetch limits is not replaced: the query fails.
func (q *blocksQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	skipChunks := false
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
		skipChunks = hints.Func == "series"
	}
	tenantID, ids, err := q.blocksInRange(ctx, mint, maxt)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if len(ids) == 0 {
		return storage.EmptySeriesSet()
	}
	ctx = q.streams.new(ctx)
	tried := blockTries{}
	pbMatchers := seriespb.FromLabelMatchers(matchers)
	limits := fetchLimitsFrom(ctx)
	open := func(ids []ulid.ULID, skipThrough labels.Labels) ([]*seriesStream, error) {
		return forEachBlockOwner(ctx, q, tenantID, ids, tried, func(ctx context.Context, addr string, client storegatewaypb.StoreGatewayClient, blocks []string) (*seriesStream, []string, error) {
			return openBlockStream(ctx, addr, client, &storegatewaypb.SeriesRequest{
				MinTimeMs: mint, MaxTimeMs: maxt, Matchers: pbMatchers, BlockIds: blocks, SkipChunks: skipChunks, Limits: limits,
			}, skipThrough)
		})
	}
	streams, err := open(ids, labels.EmptyLabels())
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return newMergedSeriesSet(ctx, streams, func(failed *seriesStream, err error) ([]*seriesStream, error) {
		failed.cancel()
		blocks := make([]ulid.ULID, 0, len(failed.blocks))
		for _, b := range failed.blocks {
			if id, err := ulid.Parse(b); err == nil {
				blocks = append(blocks, id)
			}
		}
		replacements, rerr := open(blocks, failed.lset)
		if rerr != nil {
			for _, r := range replacements {
				r.cancel()
			}
			return nil, fmt.Errorf("store-gateway %s failed: %w; %w", failed.source, err, rerr)
		}
		return replacements, nil
	})
}

// openBlockStream starts a Series stream and receives its first message, which lists the blocks the
// store-gateway answers for.
func openBlockStream(ctx context.Context, addr string, client storegatewaypb.StoreGatewayClient, req *storegatewaypb.SeriesRequest, skipThrough labels.Labels) (*seriesStream, []string, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := client.Series(ctx, req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	s := newSeriesStream(ctx, addr, func() ([]*seriespb.Series, error) {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return resp.Series, nil
	})
	s.batch, s.cancel, s.blocks, s.skipThrough = first.Series, cancel, first.QueriedBlockIds, skipThrough
	return s, first.QueriedBlockIds, nil
}

// LabelNames implements storage.Querier.
func (q *blocksQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.labelStrings(ctx, func(ctx context.Context, client storegatewaypb.StoreGatewayClient, blocks []string) ([]string, []string, error) {
		resp, err := client.LabelNames(ctx, &storegatewaypb.LabelNamesRequest{
			MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), BlockIds: blocks,
		})
		if err != nil {
			return nil, nil, err
		}
		return resp.Names, resp.QueriedBlockIds, nil
	}, limitOf(hints))
}

// LabelValues implements storage.Querier.
func (q *blocksQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.labelStrings(ctx, func(ctx context.Context, client storegatewaypb.StoreGatewayClient, blocks []string) ([]string, []string, error) {
		stream, err := client.LabelValues(ctx, &storegatewaypb.LabelValuesRequest{
			Name: name, MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), BlockIds: blocks,
		})
		if err != nil {
			return nil, nil, err
		}
		var values, queried []string
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return values, queried, nil
			}
			if err != nil {
				return nil, nil, err
			}
			values = append(values, resp.Values...)
			queried = append(queried, resp.QueriedBlockIds...)
		}
	}, limitOf(hints))
}

func (q *blocksQuerier) labelStrings(ctx context.Context, call func(context.Context, storegatewaypb.StoreGatewayClient, []string) ([]string, []string, error), limit int64) ([]string, annotations.Annotations, error) {
	tenantID, ids, err := q.blocksInRange(ctx, q.mint, q.maxt)
	if err != nil || len(ids) == 0 {
		return nil, nil, err
	}
	results, err := forEachBlockOwner(ctx, q, tenantID, ids, blockTries{}, func(ctx context.Context, _ string, client storegatewaypb.StoreGatewayClient, blocks []string) ([]string, []string, error) {
		return call(ctx, client, blocks)
	})
	if err != nil {
		return nil, nil, err
	}
	return mergeStrings(results, limit), nil, nil
}

// Close implements storage.Querier: it ends the streams of every Select.
func (q *blocksQuerier) Close() error {
	q.streams.cancel(nil)
	return nil
}

// exemplars asks the store-gateways for the exemplars in [start, end] of the tenant's blocks that have
// exemplar files, as ExemplarQueryable answers them, and returns their answers unmerged. A store-gateway
// that fails is replaced by another replica of its blocks; one that stops at a limit fails the query.
func (q *BlocksQueryable) exemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits, budget *exemplarBudget) ([][]*seriespb.SeriesExemplars, error) {
	bq := &blocksQuerier{BlocksQueryable: q, mint: start, maxt: end}
	tenantID, ids, err := bq.blocksInRangeWhere(ctx, start, end, func(b *blockstore.BlockEntry) bool { return b.HasExemplars })
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	req := &storegatewaypb.ExemplarsRequest{MinTimeMs: start, MaxTimeMs: end}
	req.MatcherSets, req.Limits = exemplarRequestParts(matcherSets, limits)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	limited := &firstLimitError{cancel: cancel}
	answers, err := forEachBlockOwner(ctx, bq, tenantID, ids, blockTries{}, func(ctx context.Context, _ string, client storegatewaypb.StoreGatewayClient, blocks []string) ([]*seriespb.SeriesExemplars, []string, error) {
		series, queried, err := storeGatewayExemplars(ctx, client, req, blocks, budget)
		limited.check(err)
		return series, queried, err
	})
	if err := limited.get(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	out := make([][]*seriespb.SeriesExemplars, 0, len(answers))
	for _, a := range answers {
		if len(a) > 0 {
			out = append(out, a)
		}
	}
	return out, nil
}

// storeGatewayExemplars reads one store-gateway's QueryExemplars stream for blocks.
func storeGatewayExemplars(ctx context.Context, client storegatewaypb.StoreGatewayClient, req *storegatewaypb.ExemplarsRequest, blocks []string, budget *exemplarBudget) ([]*seriespb.SeriesExemplars, []string, error) {
	stream, err := client.QueryExemplars(ctx, &storegatewaypb.ExemplarsRequest{
		MinTimeMs: req.MinTimeMs, MaxTimeMs: req.MaxTimeMs, MatcherSets: req.MatcherSets, Limits: req.Limits, BlockIds: blocks,
	})
	if err != nil {
		return nil, nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, nil, err
	}
	var series []*seriespb.SeriesExemplars
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return series, first.QueriedBlockIds, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if err := budget.take(msg.Series); err != nil {
			return nil, nil, err
		}
		series = append(series, msg.Series...)
	}
}

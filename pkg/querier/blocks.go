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
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	storagetsdb "github.com/strata-metrics/strata/pkg/storage/tsdb"
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
	bucket  objstore.Bucket
	ring    ring.ReadRing
	clients StoreGatewayClients
	logger  *slog.Logger
	// queryStoreAfter skips blocks holding only data newer than this, which ingesters still have, unless
	// the blocks were uploaded (backfilled): no ingester ever held those.
	queryStoreAfter time.Duration
	now             func() time.Time
}

// NewBlocksQueryable returns a queryable over the blocks of bkt, served by the store-gateways of r. Blocks
// with only data newer than queryStoreAfter are read only if they were uploaded rather than shipped by
// ingesters (0 reads every block).
func NewBlocksQueryable(bkt objstore.Bucket, r ring.ReadRing, clients StoreGatewayClients, queryStoreAfter time.Duration, logger *slog.Logger) *BlocksQueryable {
	return &BlocksQueryable{bucket: bkt, ring: r, clients: clients, logger: logger, queryStoreAfter: queryStoreAfter, now: time.Now}
}

// Querier implements storage.Queryable.
func (q *BlocksQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &blocksQuerier{BlocksQueryable: q, mint: mint, maxt: maxt}, nil
}

type blocksQuerier struct {
	*BlocksQueryable
	mint, maxt int64
}

// blocksInRange returns the IDs of the tenant's blocks that overlap [mint, maxt] and should be read.
func (q *blocksQuerier) blocksInRange(ctx context.Context, mint, maxt int64) (string, []ulid.ULID, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return "", nil, err
	}
	idx, err := storagetsdb.ReadIndex(ctx, bucket.NewTenantBucket(q.bucket, tenantID))
	if errors.Is(err, storagetsdb.ErrIndexNotFound) {
		return tenantID, nil, nil // no block was ever compacted for this tenant
	}
	if err != nil {
		return "", nil, fmt.Errorf("read bucket index: %w", err)
	}
	recent := int64(math.MaxInt64)
	if q.queryStoreAfter > 0 {
		recent = q.now().Add(-q.queryStoreAfter).UnixMilli()
	}
	var ids []ulid.ULID
	for _, b := range storagetsdb.BlocksToQuery(idx, nil) {
		if b.MinTime > maxt || b.MaxTime <= mint {
			continue
		}
		if b.MinTime > recent && !b.UploadedData {
			continue // ingesters answer for it
		}
		ids = append(ids, b.ID)
	}
	return tenantID, ids, nil
}

// forEachStoreGateway asks store-gateways for every block of ids: f is called per store-gateway with
// the blocks assigned to it and returns the blocks it answered for. Blocks left unanswered are retried on
// replicas not asked yet.
func (q *blocksQuerier) forEachStoreGateway(ctx context.Context, tenantID string, ids []ulid.ULID, f func(context.Context, storegatewaypb.StoreGatewayClient, []string) ([]string, error)) error {
	remaining := map[ulid.ULID]struct{}{}
	for _, id := range ids {
		remaining[id] = struct{}{}
	}
	tried := map[ulid.ULID][]string{}
	var failures []string
	for attempt := 0; attempt < maxBlockAttempts && len(remaining) > 0; attempt++ {
		byAddr := map[string][]string{}
		for id := range remaining {
			rs, err := q.ring.Get(ring.BlockToken(tenantID, id), ring.Read, nil)
			if err != nil {
				return fmt.Errorf("find store-gateways of block %s: %w", id, err)
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
				client, err := q.clients.GetStoreGatewayClient(addr)
				var answered []string
				if err == nil {
					answered, err = f(ctx, client, blocks)
				}
				mtx.Lock()
				defer mtx.Unlock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", addr, err))
					return
				}
				for _, a := range answered {
					if id, err := ulid.Parse(a); err == nil {
						delete(remaining, id)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(remaining) == 0 {
		return nil
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
	return errors.New(msg)
}

// Select implements storage.Querier.
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
	var (
		mtx     sync.Mutex
		answers [][]*seriespb.Series
	)
	pbMatchers := seriespb.FromLabelMatchers(matchers)
	err = q.forEachStoreGateway(ctx, tenantID, ids, func(ctx context.Context, client storegatewaypb.StoreGatewayClient, blocks []string) ([]string, error) {
		stream, err := client.Series(ctx, &storegatewaypb.SeriesRequest{
			MinTimeMs: mint, MaxTimeMs: maxt, Matchers: pbMatchers, BlockIds: blocks, SkipChunks: skipChunks,
		})
		if err != nil {
			return nil, err
		}
		var (
			series  []*seriespb.Series
			queried []string
		)
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			series = append(series, resp.Series...)
			queried = append(queried, resp.QueriedBlockIds...)
		}
		mtx.Lock()
		answers = append(answers, series)
		mtx.Unlock()
		return queried, nil
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	// A series' blocks may be spread over several store-gateways, and a retry may have asked two for the
	// same block; the merge keeps one sample per timestamp.
	set, err := mergeEncodedAnswers(answers)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return set
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
		resp, err := client.LabelValues(ctx, &storegatewaypb.LabelValuesRequest{
			Name: name, MinTimeMs: q.mint, MaxTimeMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), BlockIds: blocks,
		})
		if err != nil {
			return nil, nil, err
		}
		return resp.Values, resp.QueriedBlockIds, nil
	}, limitOf(hints))
}

func (q *blocksQuerier) labelStrings(ctx context.Context, call func(context.Context, storegatewaypb.StoreGatewayClient, []string) ([]string, []string, error), limit int64) ([]string, annotations.Annotations, error) {
	tenantID, ids, err := q.blocksInRange(ctx, q.mint, q.maxt)
	if err != nil || len(ids) == 0 {
		return nil, nil, err
	}
	var (
		mtx     sync.Mutex
		results []any
	)
	err = q.forEachStoreGateway(ctx, tenantID, ids, func(ctx context.Context, client storegatewaypb.StoreGatewayClient, blocks []string) ([]string, error) {
		values, queried, err := call(ctx, client, blocks)
		if err != nil {
			return nil, err
		}
		mtx.Lock()
		results = append(results, values)
		mtx.Unlock()
		return queried, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return mergeStrings(results, limit), nil, nil
}

// Close implements storage.Querier.
func (q *blocksQuerier) Close() error { return nil }

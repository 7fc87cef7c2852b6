package storegateway

import (
	"fmt"
	"path"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

// exemplarsBatchBytes bounds the labels of one QueryExemplars message.
const exemplarsBatchBytes = 1 << 20

// QueryExemplars implements storegatewaypb.StoreGatewayServer: it reads the exemplar files of the
// requested blocks it holds that overlap the range, merges them (a series once, an exemplar once,
// oldest first), and streams the series matching a matcher set with their exemplars in the range. The
// first message lists the blocks answered for. The answer stops with the series limit's error once it
// holds more series than the request's limits allow.
func (s *StoreGateway) QueryExemplars(req *storegatewaypb.ExemplarsRequest, srv storegatewaypb.StoreGateway_QueryExemplarsServer) error {
	defer s.observeDuration("QueryExemplars", time.Now())
	ctx := srv.Context()
	q, err := parseQuery(ctx, req.BlockIds, req.MinTimeMs, req.MaxTimeMs, nil)
	if err != nil {
		return err
	}
	sets, err := seriespb.ToExemplarMatcherSets(req.MatcherSets)
	if err != nil {
		return err
	}
	blocks, queried := s.acquireBlocks(q)
	defer releaseBlocks(blocks)
	if err := srv.Send(&storegatewaypb.ExemplarsResponse{QueriedBlockIds: queried}); err != nil {
		return err
	}
	if len(sets) == 0 {
		return nil
	}

	var (
		readers []*blockstore.ExemplarReader
		// Shared by the readers: a merge holds a series of every file at once.
		budget = req.GetLimits().GetMaxExemplars()
	)
	overBudget := seriespb.LimitStatus(seriespb.ExemplarsLimitError(budget))
	for _, b := range blocksInRange(blocks, q.mint, q.maxt) {
		if b.meta.Strata.Exemplars == 0 {
			continue
		}
		rc, err := b.bkt.Get(ctx, path.Join(b.id().String(), blockstore.ExemplarsFilename))
		if b.bkt.IsObjNotFoundErr(err) {
			// Lost from the bucket: the block's samples are still served, its exemplars cannot be.
			s.logger.Warn("block's exemplar file is missing; its exemplars are left out", "tenant", q.tenant, "block", b.id())
			continue
		}
		if err != nil {
			return grpcError(fmt.Errorf("read exemplars of block %s: %w", b.id(), err))
		}
		defer rc.Close()
		r, err := blockstore.NewExemplarReader(rc)
		if err != nil {
			return grpcError(fmt.Errorf("block %s: %w", b.id(), err))
		}
		r.SelectSeries(func(lset labels.Labels) bool { return matchesSomeSet(lset, sets) })
		if budget > 0 {
			r.LimitExemplars(&budget, overBudget)
		}
		readers = append(readers, r)
	}

	fetched := seriespb.NewFetchCounter(req.Limits)
	batcher := seriespb.NewExemplarBatcher(exemplarsBatchBytes, func(series []*seriespb.SeriesExemplars) error {
		return srv.Send(&storegatewaypb.ExemplarsResponse{Series: series})
	})
	inRange := func(_ labels.Labels, e exemplar.Exemplar) bool { return q.mint <= e.Ts && e.Ts <= q.maxt }
	err = blockstore.MergeExemplars(readers, inRange, func(lset labels.Labels, exemplars []exemplar.Exemplar) error {
		if err := fetched.Add(0); err != nil {
			return err
		}
		return batcher.Add(lset, exemplars)
	})
	if err == nil {
		err = batcher.Flush()
	}
	return grpcError(err)
}

func matchesSomeSet(lset labels.Labels, sets [][]*labels.Matcher) bool {
	for _, ms := range sets {
		matches := true
		for _, m := range ms {
			if !m.Matches(lset.Get(m.Name)) {
				matches = false
				break
			}
		}
		if matches {
			return true
		}
	}
	return false
}

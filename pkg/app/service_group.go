package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/services"
)

// serviceGroup runs several services as one module: started in order, stopped in reverse. Nil entries
// are skipped.
type serviceGroup []services.Service

func (g serviceGroup) Start(ctx context.Context) error {
	for i, s := range g {
		if s == nil {
			continue
		}
		if err := s.Start(ctx); err != nil {
			// Undo what already started, so a failed module holds nothing.
			_ = g[:i].Stop(ctx)
			return err
		}
	}
	return nil
}

func (g serviceGroup) Stop(ctx context.Context) error {
	var errs []error
	for i := len(g) - 1; i >= 0; i-- {
		if g[i] == nil {
			continue
		}
		if err := g[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// activate turns a registered instance ACTIVE once everything before it in its group has started.
type activate struct{ lifecycler *ring.Lifecycler }

func (a activate) Start(ctx context.Context) error { return a.lifecycler.ChangeState(ctx, ring.ACTIVE) }
func (a activate) Stop(context.Context) error      { return nil }

// onStop is a service with nothing to start that releases something on Stop.
type onStop func() error

func (f onStop) Start(context.Context) error { return nil }
func (f onStop) Stop(context.Context) error  { return f() }

// waitUntilInRing returns once the ring's view (which follows the KV store asynchronously) includes the
// instance, ACTIVE if active is set, so that what starts next sees the instance's own registration (and
// with active, already finds its own share of the ring's keys).
type waitUntilInRing struct {
	ring   *ring.Ring
	id     string
	active bool
}

func (w waitUntilInRing) Start(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if inst, ok := w.ring.Desc().Instances[w.id]; ok && (!w.active || inst.State == ring.ACTIVE) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s never appeared in the ring (active: %t): %w", w.id, w.active, ctx.Err())
		case <-t.C:
		}
	}
}

func (w waitUntilInRing) Stop(context.Context) error { return nil }

// Package frontend is the query-frontend: it takes the Prometheus API's read requests in front of the
// queriers, splits, caches and shards range queries (querymiddleware, querysharding), and queues what
// remains per tenant until a querier worker pulls it over gRPC (Frontend.Process).
package frontend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/frontend/queue"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Config configures the query-frontend.
type Config struct {
	MaxOutstandingPerTenant int
	MaxRetries              int
	MaxBodySize             int64
	MaxInflightBodyBytes    int64
	LogQueriesLongerThan    time.Duration
}

// RegisterFlags registers the query-frontend's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxOutstandingPerTenant, "query-frontend.max-outstanding-requests-per-tenant", 100,
		"Requests of one tenant that may wait in the query-frontend's queue; further ones get 429 until queriers catch up.")
	f.IntVar(&c.MaxRetries, "query-frontend.max-retries-per-request", 5,
		"How many times a request is sent again, to whichever querier is free, when its querier failed (5xx other than a timeout) or went away.")
	f.Int64Var(&c.MaxBodySize, "query-frontend.max-body-size", 10<<20,
		"Largest request body, in bytes, the query-frontend reads (POSTed forms); larger requests get 413.")
	f.Int64Var(&c.MaxInflightBodyBytes, "query-frontend.max-inflight-request-bytes", 256<<20,
		"Bytes of request bodies the query-frontend holds at once, all requests together; requests beyond it get 503 and are retried later. It keeps many large POSTed queries, queued together, from exhausting the process' memory.")
	f.DurationVar(&c.LogQueriesLongerThan, "query-frontend.log-queries-longer-than", 0,
		"Queries that take longer than this are logged with their tenant, parameters and statistics. 0 logs none.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxOutstandingPerTenant <= 0 {
		return errors.New("-query-frontend.max-outstanding-requests-per-tenant must be positive")
	}
	if c.MaxRetries < 0 {
		return errors.New("-query-frontend.max-retries-per-request must not be negative")
	}
	if c.MaxBodySize <= 0 || c.MaxInflightBodyBytes < c.MaxBodySize {
		return errors.New("-query-frontend.max-body-size must be positive, and -query-frontend.max-inflight-request-bytes at least as large")
	}
	return nil
}

// Frontend queues requests per tenant and hands them to the querier workers connected to it.
type Frontend struct {
	frontendpb.UnimplementedFrontendServer

	cfg    Config
	queue  *queue.Queue
	logger *slog.Logger
	ids    atomic.Uint64

	retries          prometheus.Counter
	connectedWorkers prometheus.GaugeFunc
	workers          atomic.Int64
}

// New returns a frontend whose queue gives each tenant the queriers its max_queriers_per_tenant allows.
func New(cfg Config, limits *validation.Overrides, reg prometheus.Registerer, logger *slog.Logger) *Frontend {
	f := &Frontend{
		cfg:    cfg,
		logger: logger,
		queue: queue.New(cfg.MaxOutstandingPerTenant, func(tenant string) int {
			return limits.For(tenant).MaxQueriersPerTenant
		}, reg),
		retries: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_retries_total",
			Help: "Requests sent to a querier again after a querier failed or went away.",
		}),
	}
	f.connectedWorkers = promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_query_frontend_connected_workers",
		Help: "Querier worker connections to this query-frontend.",
	}, func() float64 { return float64(f.workers.Load()) })
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_query_frontend_connected_queriers",
		Help: "Queriers with at least one worker connected to this query-frontend.",
	}, func() float64 { return float64(f.queue.Queriers()) })
	return f
}

// Start implements services.Service.
func (f *Frontend) Start(context.Context) error { return nil }

// Stop ends the workers' streams; requests still queued fail when their senders time out.
func (f *Frontend) Stop(context.Context) error {
	f.queue.Stop()
	return nil
}

// request is a query waiting for, or being run by, a querier.
type request struct {
	ctx      context.Context
	tenant   string
	http     *frontendpb.HTTPRequest
	enqueued time.Time
	done     chan outcome // buffered: whoever finishes the request never waits for its sender
}

type outcome struct {
	result *frontendpb.Result
	queued time.Duration
	err    error
}

// errQuerierGone fails a request whose querier's connection ended before it answered; it is retried.
var errQuerierGone = errors.New("the querier running the query went away")

// schedule queues req for tenant and waits for its result, ctx's end, or its querier's loss.
func (f *Frontend) schedule(ctx context.Context, tenant string, httpReq *frontendpb.HTTPRequest) outcome {
	req := &request{ctx: ctx, tenant: tenant, http: httpReq, enqueued: time.Now(), done: make(chan outcome, 1)}
	if err := f.queue.Enqueue(tenant, req); err != nil {
		return outcome{err: err}
	}
	select {
	case o := <-req.done:
		return o
	case <-ctx.Done():
		// Still queued: take it out. Already with a querier: Process sees ctx's end and cancels it there.
		f.queue.Remove(tenant, req)
		return outcome{err: ctx.Err(), queued: time.Since(req.enqueued)}
	}
}

// Process implements frontendpb.FrontendServer: it serves one querier worker connection, sending it the
// queue's requests one at a time.
func (f *Frontend) Process(stream frontendpb.Frontend_ProcessServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	querierID := first.GetHello().GetQuerierId()
	if querierID == "" {
		return status.Error(codes.InvalidArgument, "the first message of a worker connection must be a Hello with the querier's ID")
	}
	f.queue.QuerierConnected(querierID)
	f.workers.Add(1)
	defer func() {
		f.workers.Add(-1)
		f.queue.QuerierDisconnected(querierID)
	}()

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	results := make(chan *frontendpb.Result)
	recvDone := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				recvDone <- err
				cancel()
				return
			}
			if r := msg.GetResult(); r != nil {
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	for {
		item, _, err := f.queue.Dequeue(ctx, querierID)
		if err != nil {
			if errors.Is(err, queue.ErrStopped) {
				return status.Error(codes.Unavailable, "the query-frontend is shutting down")
			}
			return nil // the worker went away
		}
		req := item.(*request)
		if err := f.run(ctx, stream, req, results, recvDone); err != nil {
			return err
		}
	}
}

// run sends req to the worker and waits for its result, cancelling it on the worker if req's sender
// leaves first. An error ends the worker's stream.
func (f *Frontend) run(ctx context.Context, stream frontendpb.Frontend_ProcessServer, req *request,
	results <-chan *frontendpb.Result, recvDone <-chan error) error {
	queued := time.Since(req.enqueued)
	if req.ctx.Err() != nil {
		return nil // its sender has gone already
	}
	id := f.ids.Add(1)
	if err := stream.Send(&frontendpb.FrontendMessage{Msg: &frontendpb.FrontendMessage_Query{Query: &frontendpb.Query{Id: id, Request: req.http}}}); err != nil {
		req.done <- outcome{err: errQuerierGone, queued: queued}
		return err
	}
	canceled := false
	for {
		select {
		case r := <-results:
			if r.GetQueryId() != id {
				continue // a late answer to an earlier query; cannot happen with a well-behaved worker
			}
			if !canceled {
				req.done <- outcome{result: r, queued: queued}
			}
			return nil
		case <-req.ctx.Done():
			if canceled {
				continue
			}
			canceled = true
			// The worker stops the query and answers; its slot is free again only then.
			if err := stream.Send(&frontendpb.FrontendMessage{Msg: &frontendpb.FrontendMessage_Cancel{Cancel: &frontendpb.Cancel{QueryId: id}}}); err != nil {
				return err
			}
		case err := <-recvDone:
			if !canceled {
				req.done <- outcome{err: errQuerierGone, queued: queued}
			}
			return fmt.Errorf("receive from the worker: %w", err)
		case <-ctx.Done():
			if !canceled {
				req.done <- outcome{err: errQuerierGone, queued: queued}
			}
			return ctx.Err()
		}
	}
}

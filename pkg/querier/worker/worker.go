// Package worker connects a querier to the query-frontends: it pulls their queued queries over gRPC
// (frontendpb.Frontend/Process) and answers each with the querier's own HTTP handler.
package worker

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/util/inprocess"
)

// Config configures the querier's connections to the query-frontends.
type Config struct {
	FrontendAddress string
	DNSLookupPeriod time.Duration
	QuerierID       string
	Client          grpcclient.Config
}

// RegisterFlags registers the worker's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.FrontendAddress, "querier.frontend-address", "",
		"host:port of the query-frontends' gRPC servers; the querier pulls queries from every address the host resolves to (a headless Kubernetes service lists them all). Empty: the querier serves its HTTP API directly, or, in -target=all, pulls from the frontend in this process.")
	f.DurationVar(&c.DNSLookupPeriod, "querier.dns-lookup-period", 10*time.Second,
		"How often -querier.frontend-address is resolved again, to connect to new query-frontends and leave removed ones.")
	f.StringVar(&c.QuerierID, "querier.id", "",
		"This querier's ID at the query-frontends, which give each tenant a subset of the queriers (-query-frontend.max-queriers-per-tenant). Default: hostname and gRPC port.")
	c.Client.RegisterFlagsWithPrefix("querier.frontend-client", "query-frontend", f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DNSLookupPeriod <= 0 {
		return errors.New("-querier.dns-lookup-period must be positive")
	}
	return c.Client.Validate()
}

// Worker keeps concurrency streams open to the query-frontends, shared out between them, each running
// one query at a time.
type Worker struct {
	cfg         Config
	concurrency int
	handler     http.Handler
	pool        *grpcclient.Pool
	logger      *slog.Logger
	lookupHost  func(ctx context.Context, host string) ([]string, error)

	mu        sync.Mutex
	frontends map[string]*frontendStreams // by address
	ctx       context.Context
	stop      context.CancelFunc
	done      chan struct{}

	queries *prometheus.CounterVec
}

type frontendStreams struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a worker that answers the frontends' queries with handler, running at most concurrency
// queries at once in all.
func New(cfg Config, concurrency int, handler http.Handler, reg prometheus.Registerer, logger *slog.Logger) *Worker {
	return &Worker{
		cfg: cfg, concurrency: max(concurrency, 1), handler: handler, logger: logger,
		pool:       grpcclient.NewPool("query_frontend", nil, cfg.Client, reg, logger),
		lookupHost: net.DefaultResolver.LookupHost,
		frontends:  map[string]*frontendStreams{},
		queries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_worker_queries_total",
			Help: "Queries pulled from query-frontends and answered, by status code.",
		}, []string{"status_code"}),
	}
}

// Start connects to the frontends the address resolves to now, and keeps resolving it.
func (w *Worker) Start(context.Context) error {
	w.ctx, w.stop = context.WithCancel(context.Background())
	w.done = make(chan struct{})
	w.resolve()
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.cfg.DNSLookupPeriod)
		defer t.Stop()
		for {
			select {
			case <-w.ctx.Done():
				return
			case <-t.C:
				w.resolve()
			}
		}
	}()
	return nil
}

// Stop closes every stream; a query running on one ends with its context.
func (w *Worker) Stop(context.Context) error {
	if w.stop == nil {
		return nil
	}
	w.stop()
	<-w.done
	w.mu.Lock()
	for addr, fs := range w.frontends {
		fs.cancel()
		fs.wg.Wait()
		delete(w.frontends, addr)
	}
	w.mu.Unlock()
	return w.pool.Close()
}

// resolve connects to new frontend addresses and leaves those that are gone, then shares the
// concurrency out again.
func (w *Worker) resolve() {
	addrs, err := w.frontendAddresses()
	if err != nil {
		w.logger.Warn("cannot resolve the query-frontend address; keeping the frontends known", "address", w.cfg.FrontendAddress, "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	changed := len(addrs) != len(w.frontends)
	for addr, fs := range w.frontends {
		if !slices.Contains(addrs, addr) {
			fs.cancel()
			delete(w.frontends, addr)
			changed = true
		}
	}
	if !changed {
		return
	}
	// Restart every frontend's streams with its new share: a few queries are interrupted and retried by
	// their frontends, which happens only when frontends come and go.
	for addr, fs := range w.frontends {
		fs.cancel()
		fs.wg.Wait()
		delete(w.frontends, addr)
	}
	for i, addr := range addrs {
		// concurrency/n streams each, the first ones one more, and at least one per frontend.
		streams := max(w.concurrency/len(addrs), 1)
		if i < w.concurrency%len(addrs) {
			streams++
		}
		ctx, cancel := context.WithCancel(w.ctx)
		fs := &frontendStreams{cancel: cancel}
		w.frontends[addr] = fs
		for range streams {
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				w.runStream(ctx, addr)
			}()
		}
	}
	w.logger.Info("connected to query-frontends", "frontends", addrs, "concurrency", w.concurrency)
}

func (w *Worker) frontendAddresses() ([]string, error) {
	host, port, err := net.SplitHostPort(w.cfg.FrontendAddress)
	if err != nil {
		return nil, fmt.Errorf("-querier.frontend-address %q: %w", w.cfg.FrontendAddress, err)
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	ips, err := w.lookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, port))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// runStream keeps one stream to the frontend at addr open until ctx ends, reconnecting after failures.
func (w *Worker) runStream(ctx context.Context, addr string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := w.process(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond // it worked for a while: reconnect quickly
		}
		w.logger.Debug("query-frontend stream ended; reconnecting", "frontend", addr, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// process runs one stream: it says who it is, then answers the frontend's queries one by one.
func (w *Worker) process(ctx context.Context, addr string) error {
	conn, err := w.pool.Conn(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := frontendpb.NewFrontendClient(conn).Process(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&frontendpb.QuerierMessage{Msg: &frontendpb.QuerierMessage_Hello{Hello: &frontendpb.Hello{QuerierId: w.cfg.QuerierID}}}); err != nil {
		return err
	}
	msgs := make(chan *frontendpb.FrontendMessage)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var query *frontendpb.Query
		select {
		case m := <-msgs:
			if query = m.GetQuery(); query == nil {
				continue // a cancel that crossed its query's answer
			}
		case err := <-recvErr:
			return err
		}
		result, err := w.run(ctx, query, msgs, recvErr)
		if err != nil {
			return err
		}
		// A query cut short because this querier is stopping has no answer worth sending (its handler
		// saw a canceled context): the stream ends instead, and the frontend gives the query to another
		// querier.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := stream.Send(&frontendpb.QuerierMessage{Msg: &frontendpb.QuerierMessage_Result{Result: result}}); err != nil {
			return err
		}
	}
}

// run answers query, stopping it when the frontend cancels it or the stream ends.
func (w *Worker) run(ctx context.Context, query *frontendpb.Query, msgs <-chan *frontendpb.FrontendMessage, recvErr <-chan error) (*frontendpb.Result, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan *frontendpb.Result, 1)
	go func() { done <- w.execute(qctx, query) }()
	for {
		select {
		case r := <-done:
			return r, nil
		case m := <-msgs:
			if m.GetCancel().GetQueryId() == query.GetId() {
				cancel()
			}
		case err := <-recvErr:
			cancel()
			<-done
			return nil, err
		}
	}
}

// execute runs the query's HTTP request against the querier's handler.
func (w *Worker) execute(ctx context.Context, query *frontendpb.Query) *frontendpb.Result {
	start := time.Now()
	in := query.GetRequest()
	req, err := http.NewRequestWithContext(ctx, in.GetMethod(), in.GetUrl(), bytes.NewReader(in.GetBody()))
	if err != nil {
		return errorResult(query.GetId(), http.StatusBadRequest, "bad_data", "the query-frontend sent an invalid request: "+err.Error())
	}
	for _, h := range in.GetHeaders() {
		req.Header[h.GetName()] = h.GetValues()
	}
	req.RequestURI = in.GetUrl()
	stats := &querier.QueryStats{}
	req = req.WithContext(querier.ContextWithQueryStats(ctx, stats))
	rec := inprocess.NewRecorder(w.cfg.Client.MaxSendMsgSize - 64<<10)
	w.handler.ServeHTTP(rec, req)
	w.queries.WithLabelValues(strconv.Itoa(rec.Status())).Inc()
	if rec.TooLarge {
		return errorResult(query.GetId(), http.StatusUnprocessableEntity, "execution", fmt.Sprintf(
			"the answer is larger than %d bytes, the most a querier sends to the query-frontend (-querier.frontend-client.grpc-max-send-msg-size); narrow the query", rec.MaxBody))
	}
	resp := &frontendpb.HTTPResponse{Status: int32(rec.Status()), Body: rec.Body.Bytes()}
	for name, values := range rec.Header() {
		resp.Headers = append(resp.Headers, &frontendpb.Header{Name: name, Values: values})
	}
	return &frontendpb.Result{QueryId: query.GetId(), Response: resp, Stats: &frontendpb.QueryStats{
		WallTimeSeconds:   time.Since(start).Seconds(),
		FetchedSeries:     stats.FetchedSeries.Load(),
		FetchedChunks:     stats.FetchedChunks.Load(),
		FetchedChunkBytes: stats.FetchedChunkBytes.Load(),
	}}
}

func errorResult(id uint64, status int, errType, msg string) *frontendpb.Result {
	body := fmt.Appendf(nil, `{"status":"error","errorType":%q,"error":%q}`, errType, msg)
	return &frontendpb.Result{QueryId: id, Response: &frontendpb.HTTPResponse{
		Status:  int32(status),
		Headers: []*frontendpb.Header{{Name: "Content-Type", Values: []string{"application/json"}}},
		Body:    body,
	}}
}

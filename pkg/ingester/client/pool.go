// Package client keeps one gRPC connection per ingester for the distributors and queriers that call them.
package client

import (
	"errors"
	"flag"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Config configures the connections to ingesters.
type Config struct {
	MaxRecvMsgSize int
	MaxSendMsgSize int
}

// RegisterFlags registers the ingester client's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxRecvMsgSize, "ingester.client.grpc-max-recv-msg-size", 100<<20, "Largest gRPC message, in bytes, accepted from an ingester.")
	f.IntVar(&c.MaxSendMsgSize, "ingester.client.grpc-max-send-msg-size", 100<<20, "Largest gRPC message, in bytes, sent to an ingester.")
}

// Pool hands out a client per ingester address, dialling on first use. Connections are shared by all
// requests; gRPC multiplexes them.
type Pool struct {
	cfg Config

	mtx   sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewPool returns an empty pool.
func NewPool(cfg Config) *Pool {
	return &Pool{cfg: cfg, conns: map[string]*grpc.ClientConn{}}
}

// GetClientFor returns the client of the ingester at addr.
func (p *Pool) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if conn, ok := p.conns[addr]; ok {
		return ingesterpb.NewIngesterClient(conn), nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(tenant.UnaryClientInterceptor),
		grpc.WithChainStreamInterceptor(tenant.StreamClientInterceptor),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(p.cfg.MaxRecvMsgSize),
			grpc.MaxCallSendMsgSize(p.cfg.MaxSendMsgSize),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("dial ingester %s: %w", addr, err)
	}
	p.conns[addr] = conn
	return ingesterpb.NewIngesterClient(conn), nil
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	var errs []error
	for addr, conn := range p.conns {
		if err := conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
		delete(p.conns, addr)
	}
	return errors.Join(errs...)
}

package alertmanager

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/util/inprocess"
)

// ForwardedHeader marks a request of a tenant's Alertmanager API that an instance has already sent on
// to the tenant's replicas: whoever receives it serves it, never sends it on again.
const ForwardedHeader = "X-Strata-Alertmanager-Forwarded"

const (
	// replicaRequestTimeout bounds one API call sent to a replica.
	replicaRequestTimeout = 10 * time.Second
	// maxForwardedResponseBytes bounds a replica's answer to an API call: all the alerts or silences of
	// a large tenant fit, and the gRPC clients of the replicas must accept messages this large.
	maxForwardedResponseBytes = 32 << 20
)

// apiOperation is how an API call is distributed over the tenant's replicas.
type apiOperation int

const (
	// opRead goes to one replica: this instance when it is one, else the first in the ring's order,
	// so that a read follows the write made through the same instance; the next on failure.
	opRead apiOperation = iota
	// opWrite (silences) goes to one replica in the same order, which replicates the change.
	opWrite
	// opAlerts goes to every replica, each of which must hold the alerts to notify them; it succeeds
	// when a majority of them accepted.
	opAlerts
)

func (o apiOperation) String() string {
	return [...]string{"read", "write", "alerts"}[o]
}

func classify(method, rest string) apiOperation {
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return opRead
	case method == http.MethodPost && rest == "/api/v2/alerts":
		return opAlerts
	}
	return opWrite
}

// replica is one replica a call goes to; the local one is called in process.
type replica struct {
	addr  string
	local bool
}

// distribute serves an API call of the tenant's Alertmanager from its replicas (see apiOperation).
// The replicas answer with ForwardedHeader set, so a call is forwarded once at most.
func (am *MultitenantAlertmanager) distribute(w http.ResponseWriter, r *http.Request, tenantID, rest string) {
	op := classify(r.Method, rest)
	resp := am.distributeRequest(r, tenantID, op)
	am.metrics.distributed.WithLabelValues(op.String(), resultOf(resp)).Inc()
	for _, h := range resp.GetHeaders() {
		w.Header()[h.GetName()] = h.GetValues()
	}
	w.WriteHeader(int(resp.GetStatus()))
	_, _ = w.Write(resp.GetBody())
}

func (am *MultitenantAlertmanager) distributeRequest(r *http.Request, tenantID string, op apiOperation) *alertmanagerpb.HTTPResponse {
	req, resp := forwardedRequest(r)
	if resp != nil {
		return resp
	}
	addrs, position, err := am.Replication.Replicas(tenantID)
	if err != nil {
		am.logger.Warn("find the replicas of a tenant", "tenant", tenantID, "err", err)
		return errorResponse(http.StatusServiceUnavailable, fmt.Sprintf("the replicas of the tenant's Alertmanager are unknown: %v", err))
	}
	if len(addrs) == 0 {
		return errorResponse(http.StatusServiceUnavailable, "no replica of the tenant's Alertmanager is alive")
	}
	replicas := make([]replica, len(addrs))
	for i, addr := range addrs {
		replicas[i] = replica{addr: addr, local: i == position}
	}
	if op != opAlerts && position > 0 && position < len(replicas) {
		// This instance first: no hop, and a read sees the writes made through it.
		local := replicas[position]
		copy(replicas[1:position+1], replicas[:position])
		replicas[0] = local
	}
	if op == opAlerts {
		return am.sendToAll(r.Context(), replicas, req)
	}
	return am.sendToOne(r.Context(), replicas, req, op)
}

// forwardedRequest reads r into the message sent to replicas, or returns the answer to a body that is
// too large.
func forwardedRequest(r *http.Request) (*alertmanagerpb.HTTPRequest, *alertmanagerpb.HTTPResponse) {
	if r.ContentLength > maxAPIBodyBytes {
		return nil, bodyTooLarge(r.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBodyBytes+1))
	if err != nil {
		return nil, errorResponse(http.StatusBadRequest, fmt.Sprintf("read the body: %v", err))
	}
	if len(body) > maxAPIBodyBytes {
		return nil, bodyTooLarge(int64(len(body)))
	}
	return &alertmanagerpb.HTTPRequest{
		Method:  r.Method,
		Url:     r.URL.RequestURI(),
		Headers: headersToPB(r.Header),
		Body:    body,
	}, nil
}

func bodyTooLarge(size int64) *alertmanagerpb.HTTPResponse {
	return errorResponse(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the body is %d bytes, more than the %d an Alertmanager API request may have", size, maxAPIBodyBytes))
}

// sendToAll sends req to every replica and answers once a majority accepted (2xx), or all answered.
// The calls outlive the request, so that every replica gets the alerts even after the quorum answered
// or the client left; Stop waits for them.
func (am *MultitenantAlertmanager) sendToAll(ctx context.Context, replicas []replica, req *alertmanagerpb.HTTPRequest) *alertmanagerpb.HTTPResponse {
	type reply struct {
		replica replica
		resp    *alertmanagerpb.HTTPResponse
		err     error
	}
	am.forwardsMtx.Lock()
	if am.forwardsClosed {
		am.forwardsMtx.Unlock()
		return errorResponse(http.StatusServiceUnavailable, errStopped.Error())
	}
	am.forwards.Add(len(replicas))
	am.forwardsMtx.Unlock()
	replies := make(chan reply, len(replicas))
	detached := context.WithoutCancel(ctx)
	for _, rep := range replicas {
		go func() {
			defer am.forwards.Done()
			resp, err := am.callReplica(detached, rep, req)
			replies <- reply{rep, resp, err}
		}()
	}

	quorum := len(replicas)/2 + 1
	accepted := 0
	var refused *alertmanagerpb.HTTPResponse
	var failures []string
	for range replicas {
		rep := <-replies
		if rep.err == nil && rep.resp.GetStatus()/100 == 2 {
			if accepted++; accepted >= quorum {
				return rep.resp
			}
			continue
		}
		if rep.err == nil && rep.resp.GetStatus()/100 == 4 {
			refused = rep.resp
		}
		failures = append(failures, failure(rep.replica, rep.resp, rep.err))
	}
	if refused != nil && accepted == 0 {
		// The alerts themselves are at fault, or the tenant has no Alertmanager.
		return refused
	}
	return errorResponse(http.StatusServiceUnavailable, fmt.Sprintf("%d of the %d live replicas of the tenant's Alertmanager accepted the alerts, %d must: %s",
		accepted, len(replicas), quorum, strings.Join(failures, "; ")))
}

// sendToOne sends req to the first replica that answers without a server error. A write is sent to
// the next only when the one before cannot have made it (unreachable, or 503: stopping or starting),
// so that a silence is not created twice.
func (am *MultitenantAlertmanager) sendToOne(ctx context.Context, replicas []replica, req *alertmanagerpb.HTTPRequest, op apiOperation) *alertmanagerpb.HTTPResponse {
	var last *alertmanagerpb.HTTPResponse
	var failures []string
	for _, rep := range replicas {
		resp, err := am.callReplica(ctx, rep, req)
		if err == nil && resp.GetStatus() < 500 {
			return resp
		}
		if err == nil {
			last = resp
		}
		failures = append(failures, failure(rep, resp, err))
		retry := op == opRead || status.Code(err) == codes.Unavailable || resp.GetStatus() == http.StatusServiceUnavailable
		if !retry || ctx.Err() != nil {
			break
		}
	}
	if last != nil && len(failures) == 1 {
		return last
	}
	return errorResponse(http.StatusServiceUnavailable, "no replica of the tenant's Alertmanager could answer: "+strings.Join(failures, "; "))
}

// callReplica serves req on rep: in process when it is this instance, else through its gRPC API.
func (am *MultitenantAlertmanager) callReplica(ctx context.Context, rep replica, req *alertmanagerpb.HTTPRequest) (*alertmanagerpb.HTTPResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, replicaRequestTimeout)
	defer cancel()
	resp, err := am.callReplicaOnce(ctx, rep, req)
	result := "success"
	if err != nil || resp.GetStatus() >= 500 {
		result = "failure"
	}
	am.metrics.replicaRequests.WithLabelValues(result).Inc()
	return resp, err
}

func (am *MultitenantAlertmanager) callReplicaOnce(ctx context.Context, rep replica, req *alertmanagerpb.HTTPRequest) (*alertmanagerpb.HTTPResponse, error) {
	if rep.local {
		return am.serveForwarded(ctx, req)
	}
	client, err := am.Replication.Client(rep.addr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return client.HandleRequest(ctx, req)
}

func failure(rep replica, resp *alertmanagerpb.HTTPResponse, err error) string {
	if err != nil {
		return fmt.Sprintf("%s: %v", rep.addr, err)
	}
	return fmt.Sprintf("%s: %d %s", rep.addr, resp.GetStatus(), strings.TrimSpace(string(resp.GetBody())))
}

// HandleRequest implements alertmanagerpb.AlertmanagerServer: it serves a call of the tenant's
// Alertmanager API (under PathPrefix) here, as ServeHTTP would with ForwardedHeader set.
func (am *MultitenantAlertmanager) HandleRequest(ctx context.Context, req *alertmanagerpb.HTTPRequest) (*alertmanagerpb.HTTPResponse, error) {
	resp, err := am.serveForwarded(ctx, req)
	if err == nil && len(resp.GetBody()) > maxForwardedResponseBytes {
		return nil, status.Errorf(codes.ResourceExhausted, "the answer is %d bytes, more than the %d sent back to another replica", len(resp.GetBody()), maxForwardedResponseBytes)
	}
	return resp, err
}

// serveForwarded is HandleRequest without the bound of the answer, which a call in process does not
// need.
func (am *MultitenantAlertmanager) serveForwarded(ctx context.Context, req *alertmanagerpb.HTTPRequest) (*alertmanagerpb.HTTPResponse, error) {
	if _, err := tenant.FromContext(ctx); err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if len(req.GetBody()) > maxAPIBodyBytes {
		return bodyTooLarge(int64(len(req.GetBody()))), nil
	}
	r, err := http.NewRequestWithContext(ctx, req.GetMethod(), req.GetUrl(), bytes.NewReader(req.GetBody()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "request: %v", err)
	}
	if p := r.URL.Path; r.URL.IsAbs() || (p != PathPrefix && !strings.HasPrefix(p, PathPrefix+"/")) {
		return nil, status.Errorf(codes.InvalidArgument, "%q is not a path of the Alertmanager API under %s", req.GetUrl(), PathPrefix)
	}
	for _, h := range req.GetHeaders() {
		r.Header[http.CanonicalHeaderKey(h.GetName())] = h.GetValues()
	}
	r.Header.Set(ForwardedHeader, "true")
	r.RequestURI = req.GetUrl()
	w := inprocess.NewRecorder(0)
	am.ServeHTTP(w, r)
	return &alertmanagerpb.HTTPResponse{Status: int32(w.Status()), Headers: headersToPB(w.Header()), Body: w.Body.Bytes()}, nil
}

// notForwarded are the headers a forwarded call leaves behind: those of the connection, the length
// (of a body sent whole), the encoding (the answer goes back uncompressed; the client's server
// compresses it if it wants) and the tenant (in the call's metadata).
var notForwarded = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Accept-Encoding": true,
	http.CanonicalHeaderKey(tenant.OrgIDHeader): true,
}

func headersToPB(h http.Header) []*alertmanagerpb.Header {
	out := make([]*alertmanagerpb.Header, 0, len(h))
	for name, values := range h {
		if !notForwarded[http.CanonicalHeaderKey(name)] {
			out = append(out, &alertmanagerpb.Header{Name: name, Values: values})
		}
	}
	return out
}

func errorResponse(code int, msg string) *alertmanagerpb.HTTPResponse {
	return &alertmanagerpb.HTTPResponse{
		Status: int32(code),
		Headers: []*alertmanagerpb.Header{
			{Name: "Content-Type", Values: []string{"text/plain; charset=utf-8"}},
			{Name: "X-Content-Type-Options", Values: []string{"nosniff"}},
		},
		Body: []byte(msg + "\n"),
	}
}

// resultOf is the result label of a distributed call's answer.
func resultOf(resp *alertmanagerpb.HTTPResponse) string {
	switch code := resp.GetStatus(); {
	case code >= 500:
		return "failure"
	case code >= 400:
		return "client_error"
	}
	return "success"
}

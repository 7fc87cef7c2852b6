package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// strataProcess is one running strata binary.
type strataProcess struct {
	t        *testing.T
	cmd      *exec.Cmd
	exited   chan struct{}
	httpAddr string
	grpcAddr string
	dataDir  string
	args     []string
	log      *syncBuffer
	// maxOpenFiles, when set, is the process' limit on open files (soft and hard, so Go cannot raise it).
	maxOpenFiles int
	// env is added to the process' environment (e.g. GOMAXPROCS=1 for a process that stands for a
	// one-core machine).
	env []string
	// scheme is "https" for a process that serves HTTP over TLS; client then trusts its CA and carries
	// the credential the harness uses (ring pages, readiness).
	scheme string
	client *http.Client
}

// freePort returns a port that is free on 127.0.0.1 and has not been handed out before in this test run.
// Ports come from below the kernel's ephemeral range: a port the kernel picked for ":0" can be taken again
// by any outbound connection (or another package's test) between our probe and the child's bind.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	if nextPort == 0 {
		portLimit = ephemeralPortLow()
		// A random start keeps two concurrent test runs on one machine apart.
		nextPort = 10000 + rand.IntN(portLimit-10000-2000)
	}
	for range 2000 {
		port := nextPort
		nextPort++
		if nextPort >= portLimit {
			nextPort = 10000
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		// UDP too: memberlist gossips on both.
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = u.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

var (
	portsMu   sync.Mutex
	nextPort  int
	portLimit int
)

// ephemeralPortLow is the first port the kernel hands out for outbound connections and ":0" listens.
func ephemeralPortLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if fields := strings.Fields(string(b)); len(fields) == 2 {
			if low, err := strconv.Atoi(fields[0]); err == nil && low > 14000 {
				return low
			}
		}
	}
	return 32768
}

// startStrata starts a single-binary Strata on fresh ports with its state in dataDir and waits until
// /ready answers 200.
func startStrata(t *testing.T, dataDir string, extraArgs ...string) *strataProcess {
	t.Helper()
	p := newStrataProcess(t, dataDir, append([]string{
		"-ingester.ring.instance-addr=127.0.0.1",
		"-ingester.ring.instance-id=strata-test",
	}, extraArgs...)...)
	p.start()
	return p
}

// newStrataProcess prepares a strata process on fresh 127.0.0.1 ports; start runs it.
func newStrataProcess(t *testing.T, dataDir string, args ...string) *strataProcess {
	t.Helper()
	httpPort, grpcPort := freePort(t), freePort(t)
	p := &strataProcess{
		t:        t,
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		grpcAddr: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		dataDir:  dataDir,
		args: append([]string{
			"-server.http-listen-address=127.0.0.1",
			"-server.http-listen-port=" + strconv.Itoa(httpPort),
			"-server.grpc-listen-address=127.0.0.1",
			"-server.grpc-listen-port=" + strconv.Itoa(grpcPort),
			"-data.dir=" + dataDir,
		}, args...),
	}
	t.Cleanup(p.kill)
	return p
}

func (p *strataProcess) start() {
	p.t.Helper()
	p.startNoWait()
	p.waitReady()
}

// startNoWait starts the process without waiting for it to be ready, so several can start in parallel.
func (p *strataProcess) startNoWait() {
	p.t.Helper()
	p.log = &syncBuffer{}
	p.cmd = exec.Command(strataBinary, p.args...)
	if p.maxOpenFiles > 0 {
		p.cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, p.maxOpenFiles), strataBinary}, p.args...)...)
	}
	if len(p.env) > 0 {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	require.NoError(p.t, p.cmd.Start())
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
}

func (p *strataProcess) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("strata exited before it was ready:\n%s", p.log)
		default:
		}
		resp, err := p.httpClient().Get(p.url("/ready"))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("strata was not ready within 30s:\n%s", p.log)
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *strataProcess) kill() {
	if p.exited == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (p *strataProcess) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("strata did not stop within 30s:\n%s", p.log)
	}
	require.Equal(p.t, 0, p.cmd.ProcessState.ExitCode(), "strata exit code; log:\n%s", p.log)
}

// restart starts the process again with the same arguments, ports and data.
func (p *strataProcess) restart() {
	p.t.Helper()
	p.start()
}

func (p *strataProcess) url(path string) string {
	if p.scheme != "" {
		return p.scheme + "://" + p.httpAddr + path
	}
	return "http://" + p.httpAddr + path
}

// httpClient is the client the harness talks to the process with.
func (p *strataProcess) httpClient() *http.Client {
	if p.client != nil {
		return p.client
	}
	return http.DefaultClient
}

// push sends a remote-write 1.0 request as Prometheus does and returns the status and body.
func push(t *testing.T, target, tenantID string, req *prompb.WriteRequest) (int, string) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	httpReq, err := newPushRequest(target, tenantID, raw)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// postSnappy pushes an encoded WriteRequest; it reports transport errors instead of failing the test.
func postSnappy(target, tenantID string, raw []byte) (int, error) {
	httpReq, err := newPushRequest(target, tenantID, raw)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func newPushRequest(target, tenantID string, raw []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if tenantID != "" {
		req.Header.Set("X-Scope-OrgID", tenantID)
	}
	return req, nil
}

// queryResult is the data of /api/v1/query and /api/v1/query_range; Result is decoded into what the
// caller points it at.
type queryResult struct {
	ResultType string `json:"resultType"`
	Result     any    `json:"result"`
}

// matrixSeries and vectorSample are the JSON shapes of range and instant results.
type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values []point           `json:"values"`
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  point             `json:"value"`
}

// point is [<unix seconds>, "<value>"].
type point [2]any

func (p point) millis(t *testing.T) int64 {
	sec, ok := p[0].(float64)
	require.True(t, ok, "timestamp %v", p[0])
	return int64(math.Round(sec * 1000))
}

func (p point) float(t *testing.T) float64 {
	s, ok := p[1].(string)
	require.True(t, ok, "value %v", p[1])
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return v
}

// apiResponse is the Prometheus HTTP API envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// getAPI calls a Prometheus-compatible read endpoint and decodes the envelope.
func getAPI(t *testing.T, base, path, tenantID string, params url.Values) (int, apiResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+params.Encode(), nil)
	require.NoError(t, err)
	if tenantID != "" {
		req.Header.Set("X-Scope-OrgID", tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out apiResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(body, &out), "body: %s", body)
	} else {
		out.Error = string(body)
	}
	return resp.StatusCode, out
}

// mustGetAPI is getAPI that requires a successful answer and decodes data into v.
func mustGetAPI(t *testing.T, base, path, tenantID string, params url.Values, v any) {
	t.Helper()
	code, resp := getAPI(t, base, path, tenantID, params)
	require.Equal(t, http.StatusOK, code, "%s %v: %s %s", path, params, resp.ErrorType, resp.Error)
	require.Equal(t, "success", resp.Status)
	require.NoError(t, json.Unmarshal(resp.Data, v))
}

// writeFile writes content to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// syncBuffer collects a process' output; exec writes it from its own goroutine while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

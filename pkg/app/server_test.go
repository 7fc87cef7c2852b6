package app

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServer_ClosesConnectionWhoseBodyNeverComes(t *testing.T) {
	const (
		readTimeout = 500 * time.Millisecond
		announced   = 100 << 20 // within -distributor.max-recv-msg-size, so the distributor starts reading
	)
	r := startApp(t, newTestApp(t, t.TempDir(), "-server.http-server-read-timeout="+readTimeout.String()))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.baseURL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST /api/v1/push HTTP/1.1\r\nHost: strata\r\nX-Scope-OrgID: tenant-1\r\n"+
		"Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", announced)
	require.NoError(t, err)

	// The server gives up on the body after the read timeout, answers and closes the connection.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, nil)
	require.NoError(t, err, "no answer within 10s")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_, err = io.Copy(io.Discard, reader)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "connection still open after 10s")
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, readTimeout)
	require.Less(t, elapsed, 5*time.Second)

	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(announced/10), "memory is allocated as the body arrives, not as announced")
}

func TestServerConfig_WriteTimeoutOutlastsQueries(t *testing.T) {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("strata", flag.ContinueOnError))
	require.Equal(t, 30*time.Second, cfg.Server.HTTPServerReadTimeout)
	require.Equal(t, 120*time.Second, cfg.Server.HTTPServerIdleTimeout)
	require.Greater(t, cfg.Server.HTTPServerWriteTimeout, cfg.Querier.Timeout, "a query that runs to -querier.timeout still gets its answer written")
}

func TestServerConfig_RefusesUnboundedTimeouts(t *testing.T) {
	for _, name := range []string{"read", "write", "idle"} {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			f := flag.NewFlagSet("strata", flag.ContinueOnError)
			cfg.RegisterFlags(f)
			require.NoError(t, f.Set("server.http-server-"+name+"-timeout", "0s"))
			require.ErrorContains(t, cfg.Server.Validate(), "must be positive")
		})
	}
}

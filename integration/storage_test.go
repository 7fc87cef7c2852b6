package integration

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// versitygw is a real S3-compatible server (it checks SigV4 like S3), installed by .ci/run.
type versitygw struct {
	t        *testing.T
	bin      string
	endpoint string
	root     string
	cmd      *exec.Cmd
	exited   chan struct{}
}

const (
	s3AccessKey = "strata-it-access"
	s3SecretKey = "strata-it-secret-0123456789"
	s3Bucket    = "blocks"
)

func startVersityGW(t *testing.T) *versitygw {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		// A missing tool fails rather than skips: a skipped S3 test reads as a pass.
		t.Fatal("versitygw is not on PATH: run `make test-deps` (it runs " +
			"go install github.com/versity/versitygw/cmd/versitygw@v1.8.0) and put $(go env GOPATH)/bin on PATH")
	}
	s := &versitygw{t: t, bin: bin, endpoint: "127.0.0.1:" + itoa(freePort(t)), root: t.TempDir()}
	// The posix backend keeps a bucket as a top-level directory.
	require.NoError(t, os.Mkdir(filepath.Join(s.root, s3Bucket), 0o755))
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *versitygw) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--access", s3AccessKey, "--secret", s3SecretKey, "--port", s.endpoint, "--quiet", "posix", s.root)
	require.NoError(s.t, s.cmd.Start())
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	require.Eventually(s.t, func() bool {
		resp, err := http.Get("http://" + s.endpoint + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond, "versitygw did not start")
}

func (s *versitygw) stop() {
	if s.exited == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
}

// strataArgs points Strata's block storage at this server.
func (s *versitygw) strataArgs() []string {
	return []string{
		"-blocks-storage.backend=s3",
		"-blocks-storage.s3.endpoint=" + s.endpoint,
		"-blocks-storage.s3.bucket-name=" + s3Bucket,
		"-blocks-storage.s3.region=us-east-1",
		"-blocks-storage.s3.access-key-id=" + s3AccessKey,
		"-blocks-storage.s3.secret-access-key=" + s3SecretKey,
		"-blocks-storage.s3.insecure=true",
		"-blocks-storage.s3.bucket-lookup-type=path",
	}
}

// blocksOf lists the complete blocks (with meta.json) of a tenant in the server's bucket.
func (s *versitygw) blocksOf(tenantID string) []string {
	s.t.Helper()
	metas, err := filepath.Glob(filepath.Join(s.root, s3Bucket, tenantID, "*", "meta.json"))
	require.NoError(s.t, err)
	return metas
}

// TestStorage_S3OutageNeverFailsPushes ships blocks to a real S3 server, stops the server, keeps pushing,
// and checks that shipping catches up once the server is back, with nothing lost.
func TestStorage_S3OutageNeverFailsPushes(t *testing.T) {
	s3 := startVersityGW(t)
	p := startStrata(t, t.TempDir(), s3.strataArgs()...)
	base := time.Now().Add(-time.Hour)
	pushAt := func(offset time.Duration, v float64) {
		code, body := push(t, p.url("/api/v1/push"), "s3-tenant", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "outage_metric"}},
			Samples: []prompb.Sample{{Timestamp: base.Add(offset).UnixMilli(), Value: v}},
		}}})
		require.Equal(t, http.StatusNoContent, code, body)
	}
	flush := func() int {
		resp, err := http.Post(p.url("/ingester/flush?wait=true"), "", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	pushAt(0, 1)
	require.Equal(t, http.StatusNoContent, flush())
	require.Len(t, s3.blocksOf("s3-tenant"), 1)

	s3.stop()
	for i := 1; i <= 10; i++ {
		pushAt(time.Duration(i)*time.Second, float64(i+1)) // object storage down: pushes still succeed
	}
	require.Equal(t, http.StatusInternalServerError, flush(), "the flush cannot ship while S3 is down")
	require.Len(t, s3.blocksOf("s3-tenant"), 1)

	s3.start()
	require.Equal(t, http.StatusNoContent, flush(), "shipping catches up")
	require.Len(t, s3.blocksOf("s3-tenant"), 2)

	var matrix []matrixSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", "s3-tenant", map[string][]string{
		"query": {"outage_metric[2h]"}, "time": {formatTime(time.Now())},
	}, &queryResult{Result: &matrix})
	require.Len(t, matrix, 1)
	require.Len(t, matrix[0].Values, 11, "every sample pushed before and during the outage")
}

package bucket

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// s3Server is a versitygw process serving an S3 API on 127.0.0.1 over a posix directory.
type s3Server struct {
	endpoint  string // host:port
	accessKey string
	secretKey string
	root      string // every subdirectory is a bucket
	tls       bool   // served over HTTPS
}

// startVersityGW starts a real S3-compatible server (it checks SigV4 signatures like AWS does) and
// stops it when the test ends. Without the binary the test fails, naming the install command.
func startVersityGW(t *testing.T) *s3Server {
	t.Helper()
	return startVersityGWWithTLS(t, "", "")
}

// startVersityGWWithTLS is startVersityGW serving HTTPS with the given certificate when certPath is set.
func startVersityGWWithTLS(t *testing.T, certPath, keyPath string) *s3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		// A missing tool fails rather than skips: a skipped S3 test reads as a pass.
		t.Fatalf("versitygw is not on PATH: run `make test-deps` (it runs %s) and put $(go env GOPATH)/bin on PATH",
			versitygwInstall)
	}

	srv := &s3Server{
		endpoint:  freeLocalAddr(t),
		accessKey: "strata-test-access",
		secretKey: "strata-test-secret-0123456789",
		root:      t.TempDir(),
		tls:       certPath != "",
	}
	args := []string{"--access", srv.accessKey, "--secret", srv.secretKey, "--port", srv.endpoint, "--quiet"}
	scheme := "http://"
	client := &http.Client{Timeout: time.Second}
	if srv.tls {
		args = append(args, "--cert", certPath, "--key", keyPath)
		scheme = "https://"
		// Readiness only: the tests check the certificate through the bucket client.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // readiness probe
	}
	var out lockedBuffer
	cmd := exec.Command(bin, append(args, "posix", srv.root)...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	require.NoError(t, cmd.Start())

	// exited is closed once the process has exited, and waitErr then holds how it ended.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Ready once it answers HTTP at all: an unsigned request gets 403, which proves the S3 API is up.
	deadline := time.Now().Add(30 * time.Second)
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		resp, err := client.Get(scheme + srv.endpoint + "/")
		if err == nil {
			_ = resp.Body.Close()
			return srv
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited before it was ready (%v):\n%s", waitErr, out.String())
		case <-ticker.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not ready on %s after 30s (last error %v):\n%s", srv.endpoint, err, out.String())
		}
	}
}

// createBucket makes a bucket the way versitygw's posix backend stores one: a top-level directory.
// The objstore client cannot create buckets, and Strata never needs to.
func (s *s3Server) createBucket(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, os.Mkdir(filepath.Join(s.root, name), 0o755))
}

func (s *s3Server) config(bucketName string) Config {
	cfg := Config{Backend: BackendS3, S3: S3Config{
		Endpoint:         s.endpoint,
		BucketName:       bucketName,
		Region:           "us-east-1",
		AccessKeyID:      s.accessKey,
		Insecure:         !s.tls,
		BucketLookupType: S3LookupPath,
	}}
	cfg.S3.SecretAccessKey.Value = s.secretKey
	return cfg
}

func freeLocalAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// lockedBuffer collects the server's output, written from the exec package's copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewClient_S3AgainstVersityGW(t *testing.T) {
	srv := startVersityGW(t)
	srv.createBucket(t, "strata-blocks")

	reg := prometheus.NewRegistry()
	bkt, err := NewClient(t.Context(), srv.config("strata-blocks"), "ingester", reg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bkt.Close()) })
	require.Equal(t, objstore.S3, bkt.Provider())

	t.Run("round trip", func(t *testing.T) { checkRoundTrip(t, bkt) })
	t.Run("tenant isolation", func(t *testing.T) { checkTenantIsolation(t, bkt) })
	t.Run("metrics", func(t *testing.T) {
		c := readOpCounts(t, reg, OpUpload, "ingester")
		require.Positive(t, c.total)
		require.Zero(t, c.failures, "a missing object is not a failure on S3 either")
		require.Zero(t, readOpCounts(t, reg, OpGet, "ingester").failures)
	})
}

func TestNewClient_S3WrongSecretFails(t *testing.T) {
	srv := startVersityGW(t)
	srv.createBucket(t, "strata-blocks")

	cfg := srv.config("strata-blocks")
	cfg.S3.SecretAccessKey.Value = "not-the-secret"
	reg := prometheus.NewRegistry()
	bkt, err := NewClient(t.Context(), cfg, "compactor", reg, nil)
	require.NoError(t, err)
	defer bkt.Close()

	// The server checks the signature: a wrong secret must fail, and count as a failure.
	err = bkt.Upload(t.Context(), "obj", bytes.NewReader([]byte("x")))
	require.Error(t, err)
	require.Equal(t, opCounts{total: 1, failures: 1, observations: 1}, readOpCounts(t, reg, OpUpload, "compactor"))
}

func TestNewClient_S3MissingBucketFails(t *testing.T) {
	srv := startVersityGW(t)
	bkt, err := NewClient(t.Context(), srv.config("no-such-bucket"), "compactor", prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	defer bkt.Close()

	err = bkt.Upload(t.Context(), "obj", bytes.NewReader([]byte("x")))
	require.ErrorContains(t, err, "bucket")
}

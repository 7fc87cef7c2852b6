package bucket

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

func TestNewClient_S3OverTLSVerifiesTheServerAgainstTheGivenCA(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "s3-ca")
	certPath, keyPath := ca.Issue(t, "s3", "s3")
	srv := startVersityGWWithTLS(t, certPath, keyPath)
	srv.createBucket(t, "strata-blocks")
	otherCA := tlstest.NewCA(t, dir, "other-ca")

	tests := map[string]struct {
		http    S3HTTPConfig
		wantErr string
	}{
		"the server's CA":          {http: S3HTTPConfig{TLSCAPath: ca.CertPath}},
		"another CA":               {http: S3HTTPConfig{TLSCAPath: otherCA.CertPath}, wantErr: "certificate signed by unknown authority"},
		"the system's roots":       {http: S3HTTPConfig{}, wantErr: "certificate signed by unknown authority"},
		"a name it does not carry": {http: S3HTTPConfig{TLSCAPath: ca.CertPath, TLSServerName: "s3.example.com"}, wantErr: "s3.example.com"},
		"the CA and its name":      {http: S3HTTPConfig{TLSCAPath: ca.CertPath, TLSServerName: "localhost"}},
		"no verification":          {http: S3HTTPConfig{InsecureSkipVerify: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := srv.config("strata-blocks")
			cfg.S3.HTTP = tc.http
			bkt, err := NewClient(t.Context(), cfg, "ingester", prometheus.NewRegistry(), nil)
			require.NoError(t, err)
			defer bkt.Close()
			err = bkt.Upload(t.Context(), "obj-"+name, bytes.NewReader([]byte("x")))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "x", readObject(t, bkt, "obj-"+name))
		})
	}
}

func TestNewClient_S3TLSFilesAreReadAtStart(t *testing.T) {
	cfg := Config{Backend: BackendS3, S3: S3Config{Endpoint: "127.0.0.1:1", BucketName: "b",
		BucketLookupType: S3LookupPath, HTTP: S3HTTPConfig{TLSCAPath: "/nonexistent/ca.crt"}}}
	_, err := NewClient(t.Context(), cfg, "ingester", prometheus.NewRegistry(), nil)
	require.ErrorContains(t, err, "-blocks-storage.s3.http.tls-*")
	require.ErrorContains(t, err, "/nonexistent/ca.crt")
}

func TestConfig_S3TLSFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-blocks-storage.backend=s3", "-blocks-storage.s3.endpoint=s3:9000", "-blocks-storage.s3.bucket-name=b",
		"-blocks-storage.s3.http.tls-ca-path=/ca.crt",
		"-blocks-storage.s3.http.tls-cert-path=/c.crt",
		"-blocks-storage.s3.http.tls-key-path=/c.key",
		"-blocks-storage.s3.http.tls-server-name=s3.internal",
		"-blocks-storage.s3.http.insecure-skip-verify",
	}))
	require.Equal(t, S3HTTPConfig{TLSCAPath: "/ca.crt", TLSCertPath: "/c.crt", TLSKeyPath: "/c.key",
		TLSServerName: "s3.internal", InsecureSkipVerify: true}, cfg.S3.HTTP)
	require.NoError(t, cfg.Validate())

	cfg.S3.HTTP.TLSKeyPath = ""
	require.ErrorContains(t, cfg.Validate(), "-blocks-storage.s3.http.tls-cert-path and -blocks-storage.s3.http.tls-key-path go together")
	cfg.S3.HTTP = S3HTTPConfig{TLSCAPath: "/ca.crt"}
	cfg.S3.Insecure = true
	require.ErrorContains(t, cfg.Validate(), "-blocks-storage.s3.insecure is set")
}

func TestNewClient_S3PresentsTheClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "s3", "s3")
	clientCert, clientKey := ca.Issue(t, "client", "strata-ingester")

	// versitygw does not ask for client certificates: this endpoint does, and answers an upload as S3 would.
	var mu sync.Mutex
	var presented []string
	srv := tlstest.StartServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		presented = append(presented, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
	}), serverCert, serverKey, ca)

	cfg := Config{Backend: BackendS3, S3: S3Config{
		Endpoint: strings.TrimPrefix(srv.URL, "https://"), BucketName: "strata-blocks", Region: "us-east-1",
		AccessKeyID: "k", BucketLookupType: S3LookupPath,
		HTTP: S3HTTPConfig{TLSCAPath: ca.CertPath, TLSCertPath: clientCert, TLSKeyPath: clientKey},
	}}
	cfg.S3.SecretAccessKey.Value = "s"
	bkt, err := NewClient(t.Context(), cfg, "ingester", prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	defer bkt.Close()
	require.NoError(t, bkt.Upload(t.Context(), "obj", bytes.NewReader([]byte("x"))))
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(presented)
	}
	require.NotEmpty(t, seen())
	require.Equal(t, "strata-ingester", seen()[0])

	// Without the client certificate the endpoint refuses the handshake. With TLS 1.3 the client may be
	// writing its request when the server's alert arrives, and see its write fail (broken pipe) rather
	// than the alert: some attempt shows the alert, and none reaches the endpoint.
	cfg.S3.HTTP.TLSCertPath, cfg.S3.HTTP.TLSKeyPath = "", ""
	noCert, err := NewClient(t.Context(), cfg, "ingester", prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	defer noCert.Close()
	reached := len(seen())
	var lastErr error
	for range 20 {
		lastErr = noCert.Upload(t.Context(), "obj", bytes.NewReader([]byte("x")))
		require.Error(t, lastErr)
		if strings.Contains(lastErr.Error(), "certificate required") {
			break
		}
	}
	require.ErrorContains(t, lastErr, "certificate required")
	require.Len(t, seen(), reached, "no request without a certificate reached the endpoint")
}

package compactor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// tenantLimitsMap gives tenants their own limits.
type tenantLimitsMap map[string]*validation.Limits

func (m tenantLimitsMap) ByTenant(t string) *validation.Limits       { return m[t] }
func (m tenantLimitsMap) AllByTenant() map[string]*validation.Limits { return m }

// uploadEnv is a compactor serving the block upload API over a filesystem bucket, for tenant "team-a"
// (upload enabled) and "team-off" (the default: disabled).
type uploadEnv struct {
	t      *testing.T
	c      *Compactor
	bkt    objstore.Bucket
	srv    *httptest.Server
	limits *validation.Limits // team-a's, changeable before requests
}

func newUploadEnv(t *testing.T) *uploadEnv {
	t.Helper()
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	lim := validation.DefaultLimits()
	lim.CompactorBlockUploadEnabled = true
	lim.CompactorBlockUploadMaxBlockSizeBytes = 10 << 20
	overrides := validation.NewOverrides(validation.DefaultLimits(), tenantLimitsMap{"team-a": &lim})
	c, err := New(testConfig(t), overrides, bkt, nil, "compactor-1", prometheus.NewRegistry(), testLogger)
	require.NoError(t, err)
	t.Cleanup(c.uploads.stop)
	mux := http.NewServeMux()
	mux.Handle(BlockUploadPathPrefix, tenant.Middleware(true)(c.BlockUploadHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &uploadEnv{t: t, c: c, bkt: bkt, srv: srv, limits: &lim}
}

// do sends a request as tenantID (none when empty) and returns the status and body.
func (e *uploadEnv) do(method, tenantID, p string, body io.Reader) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+p, body)
	require.NoError(e.t, err)
	if tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, string(b)
}

func (e *uploadEnv) post(id ulid.ULID, op string, body []byte) (int, string) {
	e.t.Helper()
	return e.do(http.MethodPost, "team-a", BlockUploadPathPrefix+id.String()+"/"+op, bytes.NewReader(body))
}

func (e *uploadEnv) check(id ulid.ULID) UploadCheck {
	e.t.Helper()
	status, body := e.do(http.MethodGet, "team-a", BlockUploadPathPrefix+id.String()+"/check", nil)
	require.Equal(e.t, http.StatusOK, status, body)
	var c UploadCheck
	require.NoError(e.t, json.Unmarshal([]byte(body), &c))
	return c
}

// waitResult polls /check until the validation ends.
func (e *uploadEnv) waitResult(id ulid.ULID) UploadCheck {
	e.t.Helper()
	var c UploadCheck
	require.Eventually(e.t, func() bool {
		c = e.check(id)
		return c.Result != UploadStateValidating
	}, 30*time.Second, 10*time.Millisecond)
	return c
}

// upload sends every step of the upload of the block in dir, meta being its meta.json as sent.
func (e *uploadEnv) upload(dir string, meta []byte) UploadCheck {
	e.t.Helper()
	id := ulid.MustParse(filepath.Base(dir))
	status, body := e.post(id, "start", meta)
	require.Equal(e.t, http.StatusOK, status, body)
	for _, f := range blockFiles(e.t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		require.NoError(e.t, err)
		status, body = e.post(id, "files?path="+f, b)
		require.Equal(e.t, http.StatusOK, status, body)
	}
	status, body = e.post(id, "finish", nil)
	require.Equal(e.t, http.StatusOK, status, body)
	return e.waitResult(id)
}

// blockFiles lists the index and chunks files of the block in dir, as paths of the API.
func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	files := []string{blockstore.BlockIndexFilename}
	entries, err := os.ReadDir(filepath.Join(dir, blockstore.ChunksDirname))
	require.NoError(t, err)
	for _, e := range entries {
		files = append(files, blockstore.ChunksDirname+"/"+e.Name())
	}
	return files
}

// prometheusBlock builds a block as Prometheus or promtool leaves it (no strata section) and returns its
// directory and its meta.json's bytes.
func prometheusBlock(t *testing.T, spec blockSpec) (string, []byte) {
	t.Helper()
	dir, meta := buildBlock(t, "", spec)
	meta.Strata = blockstore.StrataMeta{}
	b, err := json.Marshal(meta.BlockMeta)
	require.NoError(t, err)
	return dir, b
}

func TestBlockUpload_PublishesAValidBlockThatTheCompactorIndexes(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 3})
	id := ulid.MustParse(filepath.Base(dir))

	require.Equal(t, UploadCheck{Result: UploadStateComplete}, e.upload(dir, meta))

	tb := bucket.NewTenantBucket(e.bkt, "team-a")
	got, err := blockstore.DownloadMeta(context.Background(), tb, id)
	require.NoError(t, err)
	require.Equal(t, blockstore.StrataMeta{TenantID: "team-a", Source: blockstore.SourceUpload}, got.Strata)
	require.EqualValues(t, 3, got.Stats.NumSeries)
	require.EqualValues(t, 3*2*hourMs/sampleStep, got.Stats.NumSamples)
	exists, err := tb.Exists(context.Background(), uploadStatePath(id))
	require.NoError(t, err)
	require.False(t, exists, "the state file goes once the block is published")

	require.NoError(t, e.c.CleanupAll(context.Background()))
	idx := tenantIndex(t, e.bkt, "team-a")
	require.Len(t, idx.Blocks, 1)
	require.Equal(t, id, idx.Blocks[0].ID)
	require.True(t, idx.Blocks[0].UploadedData, "queriers read uploaded blocks however recent")

	// Uploading it again is a conflict; the block stays.
	status, body := e.post(id, "start", meta)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body, "already exists")
}

func TestBlockUpload_UploadedBlocksAreCompactedWithTheRest(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	// An ingester's block, and an uploaded one over the same range with other samples of the same series
	// (vertical compaction), the next 2h range, and a block 12h later that closes the first 12h range
	// (horizontal compaction).
	ingesterMeta := shipBlock(t, e.bkt, "team-a", blockSpec{minT: base, maxT: base + 2*hourMs, series: 2, ingester: "ingester-1",
		skip: func(_ int, ts int64) bool { return ts%(2*sampleStep) != 0 }})
	want := readBlock(t, e.bkt, "team-a", ingesterMeta.ULID)
	for _, minT := range []int64{base, base + 2*hourMs, base + 12*hourMs} {
		dir, meta := prometheusBlock(t, blockSpec{minT: minT, maxT: minT + 2*hourMs, series: 2})
		require.Equal(t, UploadStateComplete, e.upload(dir, meta).Result)
		if minT < base+12*hourMs {
			want = union(want, readBlock(t, e.bkt, "team-a", ulid.MustParse(filepath.Base(dir))))
		}
	}

	require.NoError(t, e.c.CompactAll(context.Background()))
	idx := tenantIndex(t, e.bkt, "team-a")
	live := blockstore.BlocksToQuery(idx, nil)
	require.Len(t, live, 2, "the first 12h range is merged into one block; the block after it waits for its range")
	require.Equal(t, base, live[0].MinTime)
	require.Greater(t, live[0].CompactionLevel, 1)
	require.True(t, live[0].UploadedData, "a compacted block holding uploaded data stays readable however recent")
	require.Equal(t, want, readBlock(t, e.bkt, "team-a", live[0].ID))
}

func TestBlockUpload_RefusesInvalidBlocks(t *testing.T) {
	base := testBase()
	for _, tc := range []struct {
		name   string
		build  func(t *testing.T) (string, []byte)
		reason string
	}{
		{
			name: "corrupt index",
			build: func(t *testing.T) (string, []byte) {
				dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 5})
				f, err := os.OpenFile(filepath.Join(dir, "index"), os.O_RDWR, 0)
				require.NoError(t, err)
				st, err := f.Stat()
				require.NoError(t, err)
				_, err = f.WriteAt(bytes.Repeat([]byte{0xff}, 64), st.Size()/3)
				require.NoError(t, err)
				require.NoError(t, f.Close())
				return dir, meta
			},
			reason: "",
		},
		{
			name: "samples after the block's maxTime",
			build: func(t *testing.T) (string, []byte) {
				dir, _ := buildBlock(t, "", blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
				m, err := blockstore.ReadMetaFromDir(dir)
				require.NoError(t, err)
				m.MaxTime = base + hourMs
				b, err := json.Marshal(m.BlockMeta)
				require.NoError(t, err)
				return dir, b
			},
			reason: "outside the block's range",
		},
		{
			name: "invalid metric name",
			build: func(t *testing.T) (string, []byte) {
				return customBlock(t, base, labels.FromStrings("__name__", "bad-name", "job", "a"))
			},
			reason: `metric name "bad-name" is invalid`,
		},
		{
			name: "too many labels",
			build: func(t *testing.T) (string, []byte) {
				var kv []string
				for i := range 40 {
					kv = append(kv, fmt.Sprintf("l%02d", i), "v")
				}
				return customBlock(t, base, labels.FromStrings(append(kv, "__name__", "up")...))
			},
			reason: "series has 41 labels, limit is 30",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUploadEnv(t)
			dir, meta := tc.build(t)
			got := e.upload(dir, meta)
			require.Equal(t, UploadStateFailed, got.Result)
			require.Contains(t, got.Error, tc.reason)
			// Nothing became visible.
			require.NoError(t, e.c.CleanupAll(context.Background()))
			require.Empty(t, tenantIndex(t, e.bkt, "team-a").Blocks)
			// Starting again is allowed (after fixing the block).
			status, body := e.post(ulid.MustParse(filepath.Base(dir)), "start", meta)
			require.Equal(t, http.StatusOK, status, body)
			require.Equal(t, UploadStateUploading, e.check(ulid.MustParse(filepath.Base(dir))).Result)
		})
	}
}

// customBlock writes a 2h block from base holding one series with the labels given, which a TSDB accepts
// though Strata's validation may not.
func customBlock(t *testing.T, base int64, lset labels.Labels) (string, []byte) {
	t.Helper()
	parent := t.TempDir()
	w, err := promtsdb.NewBlockWriter(testLogger, parent, 2*hourMs)
	require.NoError(t, err)
	app := w.Appender(context.Background())
	for ts := base; ts < base+2*hourMs; ts += sampleStep {
		_, err := app.Append(0, lset, ts, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	dir := filepath.Join(parent, id.String())
	m, err := blockstore.ReadMetaFromDir(dir)
	require.NoError(t, err)
	b, err := json.Marshal(m.BlockMeta)
	require.NoError(t, err)
	return dir, b
}

func TestBlockUpload_RefusesBadMetaAtStart(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, _ := buildBlock(t, "", blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
	id := ulid.MustParse(filepath.Base(dir))
	meta := func(edit func(m *blockstore.Meta)) []byte {
		m, err := blockstore.ReadMetaFromDir(dir)
		require.NoError(t, err)
		m.Strata = blockstore.StrataMeta{}
		edit(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	now := time.Now()
	e.limits.CompactorBlocksRetentionPeriod = 0
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		reason string
	}{
		{"garbage", []byte("{not json"), http.StatusBadRequest, "not valid JSON"},
		{"another block's meta", meta(func(m *blockstore.Meta) { m.ULID = ulid.Make() }), http.StatusBadRequest, "describes block"},
		{"unsupported version", meta(func(m *blockstore.Meta) { m.Version = 2 }), http.StatusBadRequest, "version 2"},
		{"empty range", meta(func(m *blockstore.Meta) { m.MaxTime = m.MinTime }), http.StatusBadRequest, "is empty"},
		{"another tenant's block", meta(func(m *blockstore.Meta) { m.Strata.TenantID = "team-b" }), http.StatusBadRequest, `belongs to tenant "team-b"`},
		{"too far in the future", meta(func(m *blockstore.Meta) {
			m.MinTime, m.MaxTime = now.Add(time.Hour).UnixMilli(), now.Add(3*time.Hour).UnixMilli()
		}), http.StatusBadRequest, "later than now plus the creation grace period"},
		{"downsampled", []byte(strings.Replace(string(meta(func(*blockstore.Meta) {})), `"strata"`, `"thanos":{"downsample":{"resolution":300000}},"strata"`, 1)), http.StatusBadRequest, "downsampled"},
		{"too large", bytes.Repeat([]byte(" "), maxUploadMetaBytes+1), http.StatusRequestEntityTooLarge, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.post(id, "start", tc.body)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, tc.reason)
		})
	}
	t.Run("older than the retention period", func(t *testing.T) {
		e.limits.CompactorBlocksRetentionPeriod = 0
		defer func() { e.limits.CompactorBlocksRetentionPeriod = 0 }()
		e.limits.CompactorBlocksRetentionPeriod = 24 * 60 * 60 * 1e9 // 1d; the block is 3 days old
		status, body := e.post(id, "start", meta(func(*blockstore.Meta) {}))
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, "retention period")
	})
}

func TestBlockUpload_HostileRequests(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
	id := ulid.MustParse(filepath.Base(dir))
	p := BlockUploadPathPrefix + id.String()

	for _, tc := range []struct {
		name, method, tenant, path string
		body                       string
		status                     int
		reason                     string
	}{
		{"no tenant", http.MethodPost, "", p + "/start", string(meta), http.StatusUnauthorized, "no tenant"},
		{"upload disabled", http.MethodPost, "team-off", p + "/start", string(meta), http.StatusForbidden, "compactor_block_upload_enabled"},
		{"GET start", http.MethodGet, "team-a", p + "/start", "", http.StatusMethodNotAllowed, "use POST"},
		{"POST check", http.MethodPost, "team-a", p + "/check", "", http.StatusMethodNotAllowed, "use GET"},
		{"bad ULID", http.MethodPost, "team-a", BlockUploadPathPrefix + "not-a-ulid/start", string(meta), http.StatusBadRequest, "not a ULID"},
		{"unknown operation", http.MethodPost, "team-a", p + "/delete", "", http.StatusNotFound, "unknown block upload operation"},
		{"no operation", http.MethodPost, "team-a", p, "", http.StatusNotFound, "unknown path"},
		{"file before start", http.MethodPost, "team-a", p + "/files?path=index", "x", http.StatusConflict, "start first"},
		{"finish before start", http.MethodPost, "team-a", p + "/finish", "", http.StatusConflict, "start first"},
		{"check of no upload", http.MethodGet, "team-a", p + "/check", "", http.StatusNotFound, "no upload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(tc.method, tc.tenant, tc.path, strings.NewReader(tc.body))
			require.Equal(t, tc.status, status, body)
			require.Contains(t, strings.ToLower(body), strings.ToLower(tc.reason))
		})
	}

	status, body := e.post(id, "start", meta)
	require.Equal(t, http.StatusOK, status, body)
	for _, tc := range []struct{ path, reason string }{
		{"../../team-b/x/index", "not a file of a block"},
		{"chunks/../../index", "not a file of a block"},
		{"/etc/passwd", "not a file of a block"},
		{"tombstones", "not a file of a block"},
		{"meta.json", "not a file of a block"},
		{"chunks/1", "not a file of a block"},
		{"", "not a file of a block"},
	} {
		status, body := e.post(id, "files?path="+tc.path, []byte("x"))
		require.Equal(t, http.StatusBadRequest, status, "path %q: %s", tc.path, body)
		require.Contains(t, body, tc.reason)
	}

	status, body = e.post(id, "finish", nil)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "has no index")

	// Over the block size limit: refused from Content-Length before reading, and while streaming a body
	// of unknown length; nothing of the file stays.
	e.limits.CompactorBlockUploadMaxBlockSizeBytes = 1000
	status, body = e.post(id, "files?path=index", make([]byte, 1001))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
	require.Contains(t, body, "compactor_block_upload_max_block_size_bytes")
	status, body = e.do(http.MethodPost, "team-a", p+"/files?path=index", io.MultiReader(bytes.NewReader(make([]byte, 1001))))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
	status, body = e.post(id, "files?path=chunks/000001", make([]byte, 600))
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.post(id, "files?path=index", make([]byte, 401))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
	require.Contains(t, body, "600 already uploaded")
	exists, err := bucket.NewTenantBucket(e.bkt, "team-a").Exists(context.Background(), id.String()+"/index")
	require.NoError(t, err)
	require.False(t, exists)

	// A chunks file beyond the largest segment is refused from its Content-Length alone.
	e.limits.CompactorBlockUploadMaxBlockSizeBytes = 0
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+p+"/files?path=chunks/000002", strings.NewReader(""))
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, "team-a")
	req.ContentLength = maxChunksFileBytes + 1
	req.Body = io.NopCloser(strings.NewReader("short"))
	resp, err := http.DefaultClient.Do(req)
	if err == nil { // the client may give up sending the rest once the server answered
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		_ = resp.Body.Close()
	}

	// A body shorter than its Content-Length is a client error.
	status, body = e.lyingBody(p+"/files?path=index", 100, "short")
	require.Equal(t, http.StatusBadRequest, status, body)
}

// lyingBody sends a body shorter than the Content-Length it announces over a raw connection.
func (e *uploadEnv) lyingBody(p string, contentLength int, body string) (int, string) {
	e.t.Helper()
	conn, err := (&net.Dialer{}).Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(e.t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\n%s: team-a\r\nContent-Length: %d\r\n\r\n%s", p, tenant.OrgIDHeader, contentLength, body)
	require.NoError(e.t, err)
	require.NoError(e.t, conn.(*net.TCPConn).CloseWrite())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBlockUpload_InterruptedUploadStaysInvisibleAndCanBeRetried(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 2})
	id := ulid.MustParse(filepath.Base(dir))
	status, body := e.post(id, "start", meta)
	require.Equal(t, http.StatusOK, status, body)
	idx, err := os.ReadFile(filepath.Join(dir, "index"))
	require.NoError(t, err)
	status, body = e.post(id, "files?path=index", idx)
	require.Equal(t, http.StatusOK, status, body)

	// The client dies here. The compactor's passes neither show nor delete the upload.
	require.NoError(t, e.c.CompactAll(context.Background()))
	require.Empty(t, tenantIndex(t, e.bkt, "team-a").Blocks)
	require.Contains(t, blockDirs(t, e.bkt, "team-a"), id)
	require.Equal(t, UploadStateUploading, e.check(id).Result)

	// Once the upload is older than the grace period, cleanup deletes it.
	clock := &testClock{now: time.Now().Add(13 * time.Hour)} // past the 12h deletion delay
	e.c.now = clock.Now
	require.NoError(t, e.c.CompactAll(context.Background()))
	require.NotContains(t, blockDirs(t, e.bkt, "team-a"), id)
	e.c.now = time.Now

	// Retried from the start, it completes.
	require.Equal(t, UploadStateComplete, e.upload(dir, meta).Result)
}

func TestBlockUpload_StartAgainDiscardsThePreviousAttempt(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 2})
	id := ulid.MustParse(filepath.Base(dir))
	status, body := e.post(id, "start", meta)
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.post(id, "files?path=index", []byte("garbage of an earlier attempt"))
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.post(id, "start", meta)
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.post(id, "finish", nil)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "has no index")
}

func TestBlockUpload_InterruptedValidationIsReportedAndRetryable(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	dir, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 2})
	id := ulid.MustParse(filepath.Base(dir))
	// A state left "validating" by a compactor that stopped.
	tb := bucket.NewTenantBucket(e.bkt, "team-a")
	var m blockstore.Meta
	require.NoError(t, json.Unmarshal(meta, &m))
	require.NoError(t, e.c.writeUploadState(context.Background(), tb, id, &uploadState{State: UploadStateValidating, Meta: &m}))
	require.Equal(t, UploadStateValidating, e.check(id).Result)
	status, body := e.post(id, "start", meta)
	require.Equal(t, http.StatusConflict, status, body)

	clock := &testClock{now: time.Now().Add(validationStaleAfter + time.Minute)}
	e.c.now = clock.Now
	got := e.check(id)
	require.Equal(t, UploadStateFailed, got.Result)
	require.Contains(t, got.Error, "interrupted")
	require.Equal(t, UploadStateComplete, e.upload(dir, meta).Result)
}

func TestBlockUpload_WithoutValidationOnlyChecksMetaAndSizes(t *testing.T) {
	e := newUploadEnv(t)
	e.limits.CompactorBlockUploadValidationEnabled = false
	base := testBase()
	dir, meta := customBlock(t, base, labels.FromStrings("__name__", "bad-name"))
	require.Equal(t, UploadStateComplete, e.upload(dir, meta).Result)
}

// zeroReader is an endless source of zeros.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestBlockUpload_StreamsFilesWithoutHoldingThem(t *testing.T) {
	e := newUploadEnv(t)
	e.limits.CompactorBlockUploadMaxBlockSizeBytes = 0
	base := testBase()
	_, meta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
	var m blockstore.Meta
	require.NoError(t, json.Unmarshal(meta, &m))
	status, body := e.post(m.ULID, "start", meta)
	require.Equal(t, http.StatusOK, status, body)

	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Body of unknown length (chunked): the server cannot size a buffer from Content-Length either.
	status, body = e.do(http.MethodPost, "team-a", BlockUploadPathPrefix+m.ULID.String()+"/files?path=index", io.LimitReader(zeroReader{}, size))
	runtime.ReadMemStats(&after)
	require.Equal(t, http.StatusOK, status, body)
	attrs, err := bucket.NewTenantBucket(e.bkt, "team-a").Attributes(context.Background(), m.ULID.String()+"/index")
	require.NoError(t, err)
	require.EqualValues(t, size, attrs.Size)
	// Client and server together allocate a small fraction of the file.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(size/8), "allocated %d bytes to stream %d", after.TotalAlloc-before.TotalAlloc, size)
}

// An uploaded meta.json that says its block replaces others (compaction sources) must not make the
// compactor delete them nor queriers skip them: the upload replaces nothing.
func TestBlockUpload_ClaimedSourcesReplaceNothing(t *testing.T) {
	e := newUploadEnv(t)
	base := testBase()
	victimDir, victimMeta := prometheusBlock(t, blockSpec{minT: base, maxT: base + 2*hourMs, series: 2})
	victim := ulid.MustParse(filepath.Base(victimDir))
	require.Equal(t, UploadCheck{Result: UploadStateComplete}, e.upload(victimDir, victimMeta))

	dir, raw := prometheusBlock(t, blockSpec{minT: base + 4*hourMs, maxT: base + 6*hourMs, series: 1})
	id := ulid.MustParse(filepath.Base(dir))
	var meta blockstore.Meta
	require.NoError(t, json.Unmarshal(raw, &meta))
	meta.Compaction.Sources = []ulid.ULID{id, victim}
	meta.Compaction.Level = 3
	raw, err := json.Marshal(meta.BlockMeta)
	require.NoError(t, err)
	require.Equal(t, UploadCheck{Result: UploadStateComplete}, e.upload(dir, raw))

	got, err := blockstore.DownloadMeta(context.Background(), bucket.NewTenantBucket(e.bkt, "team-a"), id)
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{id}, got.Compaction.Sources)
	require.NoError(t, e.c.CleanupAll(context.Background()))
	idx := tenantIndex(t, e.bkt, "team-a")
	require.Len(t, idx.Blocks, 2, "the victim block is still indexed")
}

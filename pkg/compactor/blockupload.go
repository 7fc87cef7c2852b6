package compactor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// BlockUploadPathPrefix is where the block upload API is mounted: {prefix}{ULID}/{start,files,finish,check}.
const BlockUploadPathPrefix = "/api/v1/upload/block/"

const (
	// UploadStateFilename sits in the directory of a block being uploaded, beside its files, until the block
	// is validated and its meta.json written. It holds the client's meta.json and the upload's state, so that
	// any compactor answers /check and a restarted one knows what was going on. Readers never see the block:
	// it has no meta.json.
	UploadStateFilename = "upload-state.json"

	// maxUploadMetaBytes bounds the meta.json a client starts an upload with; Prometheus writes a few KiB.
	maxUploadMetaBytes = 1 << 20
	// maxChunksFileBytes is the largest chunks segment Prometheus writes (it cuts a new file beyond it).
	maxChunksFileBytes = chunks.DefaultChunkSegmentSize
	// validationHeartbeat is how often a running validation rewrites the state file: it keeps the upload's
	// newest file young, so the compactor's partial-upload cleanup leaves it alone, and shows /check that
	// the validation is alive.
	validationHeartbeat = time.Minute
	// validationStaleAfter is how old a "validating" state may be before /check reports the validation as
	// interrupted (the compactor running it stopped) and start may begin the upload again.
	validationStaleAfter = 5 * validationHeartbeat
)

// Upload states, as /check reports them in "result".
const (
	UploadStateUploading  = "uploading"
	UploadStateValidating = "validating"
	UploadStateComplete   = "complete"
	UploadStateFailed     = "failed"
)

// chunksFileRe matches the chunks segment files Prometheus writes.
var chunksFileRe = regexp.MustCompile(`^chunks/[0-9]{6}$`)

// uploadState is the content of UploadStateFilename.
type uploadState struct {
	State string `json:"state"`
	// Error is why validation failed, for State failed.
	Error string `json:"error,omitempty"`
	// UpdatedAt is when the state was last written, in unix seconds; a validation rewrites it as heartbeat.
	UpdatedAt int64 `json:"updated_at"`
	// Meta is the meta.json the client started the upload with.
	Meta *blockstore.Meta `json:"meta"`
}

// UploadCheck is the answer of GET .../check: the upload's state and, when it failed, why. The keys are
// Mimir's, so its clients read them.
type UploadCheck struct {
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// blockUploads runs the validations that finish requests start: they outlive the request, so they take
// their context from the compactor, and they run one at a time, each downloading a whole block to disk.
type blockUploads struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

func newBlockUploads() *blockUploads {
	ctx, cancel := context.WithCancel(context.Background())
	return &blockUploads{ctx: ctx, cancel: cancel, sem: make(chan struct{}, 1)}
}

// stop cancels the running validations and waits for them; their uploads are left "validating" and
// become retryable once the heartbeat is stale.
func (u *blockUploads) stop() {
	u.cancel()
	u.wg.Wait()
}

// httpError is a refusal with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// BlockUploadHandler serves the block upload API under BlockUploadPathPrefix; the tenant comes from the
// request's context (mount it behind tenant.Middleware).
//
//	POST {id}/start               body: the block's meta.json; begins (or begins again) the upload
//	POST {id}/files?path=index    body: the file; also path=chunks/000001 ...
//	POST {id}/finish              validates the block in the background, then makes it visible
//	GET  {id}/check               {"result": "uploading|validating|complete|failed", "error": "..."}
func (c *Compactor) BlockUploadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.serveBlockUpload(w, r); err != nil {
			status := http.StatusInternalServerError
			var he *httpError
			var le *validation.LimitError
			switch {
			case errors.As(err, &he):
				status = he.status
			case errors.As(err, &le):
				status = http.StatusBadRequest
				switch le.Key {
				case "compactor_block_upload_enabled":
					status = http.StatusForbidden
				case "compactor_block_upload_max_block_size_bytes":
					status = http.StatusRequestEntityTooLarge
				}
			case errors.Is(err, context.Canceled):
				status = http.StatusServiceUnavailable
			}
			if status >= 500 {
				c.logger.Warn("block upload request failed", "path", r.URL.Path, "err", err)
			}
			http.Error(w, err.Error(), status)
		}
	})
}

func (c *Compactor) serveBlockUpload(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, BlockUploadPathPrefix)
	idStr, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || strings.Contains(op, "/") {
		return errorf(http.StatusNotFound, "unknown path %s: use %s{block ULID}/start, /files, /finish or /check", r.URL.Path, BlockUploadPathPrefix)
	}
	method := http.MethodPost
	switch op {
	case "start", "files", "finish":
	case "check":
		method = http.MethodGet
	default:
		return errorf(http.StatusNotFound, "unknown block upload operation %q: use start, files, finish or check", op)
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return errorf(http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, method)
	}
	id, err := ulid.ParseStrict(idStr)
	if err != nil {
		return errorf(http.StatusBadRequest, "block ID %q is not a ULID: %v", idStr, err)
	}
	tenantID, err := tenant.FromContext(r.Context())
	if err != nil {
		return errorf(http.StatusUnauthorized, "%v", err)
	}
	limits := c.tenantLimits(tenantID)
	if !limits.CompactorBlockUploadEnabled {
		return validation.NewLimitError("compactor_block_upload_enabled", "block upload is disabled for tenant %s", tenantID)
	}
	bkt := bucket.NewTenantBucket(c.bkt, tenantID)
	ctx := r.Context()
	switch op {
	case "start":
		return c.startUpload(ctx, bkt, tenantID, limits, id, r.Body)
	case "files":
		return c.uploadFile(ctx, w, r, bkt, limits, id)
	case "finish":
		return c.finishUpload(ctx, bkt, tenantID, limits, id)
	default:
		check, err := c.checkUpload(ctx, bkt, id)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(check)
	}
}

// tenantLimits returns the tenant's limits; without limits (tests, tools) every tenant has the defaults.
func (c *Compactor) tenantLimits(tenantID string) *validation.Limits {
	if c.limits == nil {
		l := validation.DefaultLimits()
		return &l
	}
	return c.limits.For(tenantID)
}

// startUpload checks the client's meta.json and records the upload. Starting again an upload that was
// interrupted or failed begins it anew: its files are deleted, so nothing of the previous attempt can mix
// with the next.
func (c *Compactor) startUpload(ctx context.Context, bkt objstore.Bucket, tenantID string, limits *validation.Limits, id ulid.ULID, body io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(body, maxUploadMetaBytes+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "read meta.json: %v", err)
	}
	if len(raw) > maxUploadMetaBytes {
		return errorf(http.StatusRequestEntityTooLarge, "meta.json is larger than %d bytes", maxUploadMetaBytes)
	}
	meta, err := checkUploadMeta(raw, id, tenantID, limits, c.now())
	if err != nil {
		return err
	}
	if exists, err := bkt.Exists(ctx, blockstore.MetaPath(id)); err != nil {
		return fmt.Errorf("check meta.json of block %s: %w", id, err)
	} else if exists {
		return errorf(http.StatusConflict, "block %s already exists", id)
	}
	st, err := readUploadState(ctx, bkt, id)
	if err != nil {
		return err
	}
	if st != nil && st.State == UploadStateValidating && !c.validationStale(st) {
		return errorf(http.StatusConflict, "block %s is being validated: wait for /check to answer", id)
	}
	if st != nil {
		if err := deleteUploadFiles(ctx, bkt, id); err != nil {
			return err
		}
	}
	return c.writeUploadState(ctx, bkt, id, &uploadState{State: UploadStateUploading, Meta: meta})
}

// uploadFile streams one file of the block to the bucket, never holding it whole in memory; a chunks file
// is at most maxChunksFileBytes and the files together at most the tenant's block size limit.
func (c *Compactor) uploadFile(ctx context.Context, w http.ResponseWriter, r *http.Request, bkt objstore.Bucket, limits *validation.Limits, id ulid.ULID) error {
	rel := r.URL.Query().Get("path")
	if rel != blockstore.BlockIndexFilename && !chunksFileRe.MatchString(rel) {
		return errorf(http.StatusBadRequest, "path %q is not a file of a block: use index or chunks/NNNNNN", rel)
	}
	if err := c.requireUploading(ctx, bkt, id); err != nil {
		return err
	}
	name := path.Join(id.String(), rel)
	maxBytes := int64(math.MaxInt64)
	if rel != blockstore.BlockIndexFilename {
		maxBytes = maxChunksFileBytes
	}
	what := fmt.Sprintf("file %s is larger than %d bytes, the largest chunks file Prometheus writes", rel, maxBytes)
	if blockLimit := int64(limits.CompactorBlockUploadMaxBlockSizeBytes); blockLimit > 0 {
		used, err := blockFilesSize(ctx, bkt, id, name)
		if err != nil {
			return err
		}
		if left := blockLimit - used; left < maxBytes {
			maxBytes = max(left, 0)
			what = fmt.Sprintf("block %s would be larger than %d bytes (%d already uploaded)", id, blockLimit, used)
		}
	}
	tooLarge := func() error {
		if maxBytes == maxChunksFileBytes {
			return errorf(http.StatusRequestEntityTooLarge, "%s", what)
		}
		return validation.NewLimitError("compactor_block_upload_max_block_size_bytes", "%s", what)
	}
	if r.ContentLength > maxBytes {
		return tooLarge()
	}
	body := &cappedReader{r: r.Body, left: maxBytes}
	if err := bkt.Upload(ctx, name, body); err != nil {
		// Nothing half-written stays: a later attempt uploads the file again.
		if derr := bkt.Delete(context.WithoutCancel(ctx), name); derr != nil && !bkt.IsObjNotFoundErr(derr) {
			c.logger.Warn("cannot delete a failed upload's file", "file", name, "err", derr)
		}
		switch {
		case body.exceeded:
			return tooLarge()
		case body.readErr != nil:
			return errorf(http.StatusBadRequest, "read the body of %s: %v", rel, body.readErr)
		}
		return fmt.Errorf("upload %s: %w", name, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// finishUpload checks that the block's files are there and starts its validation; /check says when it
// is done.
func (c *Compactor) finishUpload(ctx context.Context, bkt objstore.Bucket, tenantID string, limits *validation.Limits, id ulid.ULID) error {
	st, err := readUploadState(ctx, bkt, id)
	if err != nil {
		return err
	}
	if err := c.requireState(ctx, bkt, id, st); err != nil {
		return err
	}
	if ok, err := bkt.Exists(ctx, path.Join(id.String(), blockstore.BlockIndexFilename)); err != nil {
		return fmt.Errorf("check index of block %s: %w", id, err)
	} else if !ok {
		return errorf(http.StatusBadRequest, "block %s has no index: upload it (files?path=index) before finish", id)
	}
	if blockLimit := int64(limits.CompactorBlockUploadMaxBlockSizeBytes); blockLimit > 0 {
		size, err := blockFilesSize(ctx, bkt, id, "")
		if err != nil {
			return err
		}
		if size > blockLimit {
			return validation.NewLimitError("compactor_block_upload_max_block_size_bytes", "block %s is %d bytes, limit is %d", id, size, blockLimit)
		}
	}
	st.State = UploadStateValidating
	if err := c.writeUploadState(ctx, bkt, id, st); err != nil {
		return err
	}
	c.uploads.wg.Add(1)
	go func() {
		defer c.uploads.wg.Done()
		c.validateAndPublish(bkt, tenantID, id, st.Meta)
	}()
	return nil
}

// checkUpload reports the state of the upload of block id.
func (c *Compactor) checkUpload(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) (*UploadCheck, error) {
	if ok, err := bkt.Exists(ctx, blockstore.MetaPath(id)); err != nil {
		return nil, fmt.Errorf("check meta.json of block %s: %w", id, err)
	} else if ok {
		return &UploadCheck{Result: UploadStateComplete}, nil
	}
	st, err := readUploadState(ctx, bkt, id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		// The block may have been published between the two reads: meta.json first, then the state goes.
		if ok, err := bkt.Exists(ctx, blockstore.MetaPath(id)); err != nil {
			return nil, fmt.Errorf("check meta.json of block %s: %w", id, err)
		} else if ok {
			return &UploadCheck{Result: UploadStateComplete}, nil
		}
		return nil, errorf(http.StatusNotFound, "no upload of block %s", id)
	}
	switch {
	case st.State == UploadStateValidating && c.validationStale(st):
		return &UploadCheck{Result: UploadStateFailed, Error: "validation was interrupted (the compactor running it stopped): start the upload again"}, nil
	}
	return &UploadCheck{Result: st.State, Error: st.Error}, nil
}

// requireUploading refuses a file of a block whose upload was not started or is past uploading.
func (c *Compactor) requireUploading(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) error {
	st, err := readUploadState(ctx, bkt, id)
	if err != nil {
		return err
	}
	return c.requireState(ctx, bkt, id, st)
}

func (c *Compactor) requireState(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, st *uploadState) error {
	if st != nil && st.State == UploadStateUploading {
		return nil
	}
	if ok, err := bkt.Exists(ctx, blockstore.MetaPath(id)); err != nil {
		return fmt.Errorf("check meta.json of block %s: %w", id, err)
	} else if ok {
		return errorf(http.StatusConflict, "block %s already exists", id)
	}
	if st == nil {
		return errorf(http.StatusConflict, "no upload of block %s in progress: POST %s%s/start first", id, BlockUploadPathPrefix, id)
	}
	return errorf(http.StatusConflict, "the upload of block %s is %s, not uploading: POST %s%s/start to begin it again", id, st.State, BlockUploadPathPrefix, id)
}

func (c *Compactor) validationStale(st *uploadState) bool {
	return c.now().Sub(time.Unix(st.UpdatedAt, 0)) > validationStaleAfter
}

func uploadStatePath(id ulid.ULID) string { return path.Join(id.String(), UploadStateFilename) }

// readUploadState returns the state of the upload of block id, nil when there is none.
func readUploadState(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*uploadState, error) {
	// Some backends (the filesystem) rewrite an object in place, so a read racing a heartbeat may see it
	// cut short: read again before calling it broken.
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			}
		}
		st, err := readUploadStateOnce(ctx, bkt, id)
		if errors.Is(err, errNoUploadState) {
			return nil, nil
		}
		if err != nil || st != nil {
			return st, err
		}
	}
	// Written by us only: a broken one is an interrupted write, and the upload starts again.
	return &uploadState{State: UploadStateFailed, Error: "the upload's state is unreadable: start the upload again"}, nil
}

var errNoUploadState = errors.New("no upload state")

// readUploadStateOnce returns the state, nil and no error when it cannot be decoded, and
// errNoUploadState when there is none.
func readUploadStateOnce(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*uploadState, error) {
	r, err := bkt.Get(ctx, uploadStatePath(id))
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, errNoUploadState
		}
		return nil, fmt.Errorf("get upload state of block %s: %w", id, err)
	}
	defer r.Close()
	var st uploadState
	if err := json.NewDecoder(io.LimitReader(r, 2*maxUploadMetaBytes)).Decode(&st); err != nil || st.Meta == nil {
		return nil, nil
	}
	return &st, nil
}

func (c *Compactor) writeUploadState(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, st *uploadState) error {
	st.UpdatedAt = c.now().Unix()
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode upload state of block %s: %w", id, err)
	}
	if err := bkt.Upload(ctx, uploadStatePath(id), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write upload state of block %s: %w", id, err)
	}
	return nil
}

// blockFilesSize returns the total size of the block's uploaded files, leaving out the state file and skip.
func blockFilesSize(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, skip string) (int64, error) {
	var names []string
	if err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		if name != skip && name != uploadStatePath(id) {
			names = append(names, name)
		}
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return 0, fmt.Errorf("list files of block %s: %w", id, err)
	}
	var total int64
	for _, name := range names {
		attrs, err := bkt.Attributes(ctx, name)
		if err != nil {
			if bkt.IsObjNotFoundErr(err) {
				continue
			}
			return 0, fmt.Errorf("get attributes of %s: %w", name, err)
		}
		total += attrs.Size
	}
	return total, nil
}

// deleteUploadFiles removes the files of a previous attempt to upload block id, its state file last.
func deleteUploadFiles(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) error {
	var names []string
	if err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		if name != uploadStatePath(id) {
			names = append(names, name)
		}
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return fmt.Errorf("list files of block %s: %w", id, err)
	}
	for _, name := range append(names, uploadStatePath(id)) {
		if err := bkt.Delete(ctx, name); err != nil && !bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return nil
}

// cappedReader reads at most left bytes of r and remembers why it stopped: past the cap, or a failed read
// of the client's body (a body shorter than its Content-Length).
type cappedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	readErr  error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a body of exactly the cap from a longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.exceeded = true
			return 0, errors.New("body too large")
		}
		if err != nil && err != io.EOF {
			c.readErr = err
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	return n, err
}

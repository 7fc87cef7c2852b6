package queryui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// pageAssetPaths returns the URL paths of the assets the served page refers to.
func pageAssetPaths(t *testing.T, h http.Handler) []string {
	t.Helper()
	page := body(t, get(t, h, http.MethodGet, "/query", nil))
	refs := assetRefs(page)
	require.NotEmpty(t, refs)
	paths := make([]string, len(refs))
	for i, ref := range refs {
		paths[i] = "/query/" + ref
	}
	return paths
}

func TestHandler_ServesPageWithRevalidation(t *testing.T) {
	h := Handler()
	resp := get(t, h, http.MethodGet, "/query", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	page := string(body(t, resp))
	require.Contains(t, page, `id="tenant"`)
	require.Contains(t, page, `id="editor"`)

	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	resp = get(t, h, http.MethodGet, "/query", http.Header{"If-None-Match": {etag}})
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, body(t, resp))
}

func TestHandler_ServesEveryAssetThePageNamesForever(t *testing.T) {
	h := Handler()
	wantTypes := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
	paths := pageAssetPaths(t, h)
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, p, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, wantTypes[p[strings.LastIndexByte(p, '.'):]], resp.Header.Get("Content-Type"))
			require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
			require.NotEmpty(t, body(t, resp))
		})
	}
	var exts []string
	for _, p := range paths {
		exts = append(exts, p[strings.LastIndexByte(p, '.'):])
	}
	require.ElementsMatch(t, []string{".js", ".css", ".txt"}, exts, "the page's script, styles and licenses")
}

func TestHandler_GzipsForClientsThatAcceptIt(t *testing.T) {
	h := Handler()
	var script string
	for _, p := range pageAssetPaths(t, h) {
		if strings.HasSuffix(p, ".js") {
			script = p
		}
	}
	plain := get(t, h, http.MethodGet, script, nil)
	require.Empty(t, plain.Header.Get("Content-Encoding"))
	require.Equal(t, "Accept-Encoding", plain.Header.Get("Vary"))
	want := body(t, plain)

	for _, accept := range []string{"gzip", "br, gzip;q=0.5", "deflate, *", "GZIP"} {
		t.Run(accept, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, script, http.Header{"Accept-Encoding": {accept}})
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			require.NotEqual(t, plain.Header.Get("ETag"), resp.Header.Get("ETag"), "each encoding has its own validator")
			compressed := body(t, resp)
			require.Less(t, len(compressed), len(want)/2)
			zr, err := gzip.NewReader(bytes.NewReader(compressed))
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	for _, accept := range []string{"br", "gzip;q=0", "gzip;q=0, *", "identity"} {
		t.Run("not "+accept, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, script, http.Header{"Accept-Encoding": {accept}})
			require.Empty(t, resp.Header.Get("Content-Encoding"))
			require.Equal(t, want, body(t, resp))
		})
	}
}

func TestHandler_HeadHasHeadersButNoBody(t *testing.T) {
	h := Handler()
	for _, p := range append([]string{"/query"}, pageAssetPaths(t, h)...) {
		full := get(t, h, http.MethodGet, p, nil)
		resp := get(t, h, http.MethodHead, p, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Equal(t, full.Header.Get("Content-Type"), resp.Header.Get("Content-Type"), p)
		require.Equal(t, full.Header.Get("Content-Length"), resp.Header.Get("Content-Length"), p)
		require.Empty(t, body(t, resp), p)
	}
}

func TestHandler_RejectsOtherMethods(t *testing.T) {
	h := Handler()
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/query", pageAssetPaths(t, h)[0], "/query/assets/nope.js"} {
			resp := get(t, h, method, p, nil)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, p)
			require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
	}
}

func TestHandler_NotFoundForUnknownPathsAndNoListing(t *testing.T) {
	h := Handler()
	for _, p := range []string{
		"/query/assets/",
		"/query/assets",
		"/query/assets/nope.js",
		"/query/assets/app.js",
		"/query/index.html",
		"/query/manifest.json",
		"/query/assets/../index.html",
		"/query/assets/../manifest.json",
		"/query/other",
		"/queryx",
		"/",
	} {
		resp := get(t, h, http.MethodGet, p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		require.NotContains(t, string(body(t, resp)), "<a href", p)
	}
}

func TestHandler_TrailingSlashRedirectsRelatively(t *testing.T) {
	resp := get(t, Handler(), http.MethodGet, "/query/", nil)
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	// Relative, so that behind a proxy serving Strata under /prefix it leads to /prefix/query.
	require.Equal(t, "../query", resp.Header.Get("Location"))
}

func TestLoadAssets_RejectsBrokenBuilds(t *testing.T) {
	page := `<script src="query/assets/app-1.js"></script>`
	for name, c := range map[string]struct {
		fs      fstest.MapFS
		wantErr string
	}{
		"no page":           {fstest.MapFS{"assets/app-1.js": {Data: []byte("x")}}, "index.html is missing"},
		"missing asset":     {fstest.MapFS{"index.html": {Data: []byte(page)}}, "refers to assets/app-1.js, which is missing"},
		"unknown file type": {fstest.MapFS{"index.html": {Data: []byte(page)}, "assets/app-1.js": {Data: []byte("x")}, "assets/x.wasm": {Data: []byte("x")}}, "no content type for files named *.wasm"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadAssets(c.fs)
			require.ErrorContains(t, err, c.wantErr)
		})
	}
	assets, err := loadAssets(fstest.MapFS{"index.html": {Data: []byte(page)}, "assets/app-1.js": {Data: []byte("x")}, "manifest.json": {Data: []byte("{}")}})
	require.NoError(t, err)
	require.NotContains(t, assets, "manifest.json", "the manifest is not served")
}

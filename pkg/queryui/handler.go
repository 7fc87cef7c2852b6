// Package queryui serves Strata's query page: a PromQL editor with autocompletion, a tenant field, and
// results as a table or a graph, all talking to the Prometheus API under /prometheus/api/v1 from the
// browser. The page is a static build (web/query-ui, bundled with esbuild) embedded in the binary.
package queryui

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageSecurityPolicy lets the page load only its own assets and call only its own origin's API.
// CodeMirror and uPlot set styles from script, hence 'unsafe-inline' for styles (never for scripts).
const pageSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the page at /query and its assets at /query/assets/<name>; mount it on both "/query"
// and "/query/". The page refers to its assets and to the API by URLs relative to itself, so a proxy
// may serve Strata under a path prefix as long as it strips that prefix. Only GET and HEAD are allowed.
func Handler() http.Handler {
	assets, err := embeddedAssets()
	if err != nil {
		// The build is compiled in and the package's tests load it, so this is a broken build of Strata.
		panic(fmt.Sprintf("queryui: the embedded page is broken (rebuild it with scripts/build-query-ui.sh): %v", err))
	}
	return &pageHandler{assets: assets}
}

type pageHandler struct {
	assets pageAssets
}

func (h *pageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the query page answers GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == "/query":
		w.Header().Set("Content-Security-Policy", pageSecurityPolicy)
		w.Header().Set("Referrer-Policy", "same-origin")
		// The page names the current assets, so browsers must check it each time (a 304 when unchanged).
		h.serve(w, r, h.assets[pageFile], "no-cache")
	case p == "/query/":
		// The page's relative URLs are written for /query; a relative Location keeps a proxy's prefix.
		w.Header().Set("Location", "../query")
		w.WriteHeader(http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/query/"+assetDir):
		a, ok := h.assets[strings.TrimPrefix(p, "/query/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		// Asset names carry a hash of their content: a new build makes new names.
		h.serve(w, r, a, "public, max-age=31536000, immutable")
	default:
		http.NotFound(w, r)
	}
}

func (h *pageHandler) serve(w http.ResponseWriter, r *http.Request, a *asset, cacheControl string) {
	header := w.Header()
	header.Set("Content-Type", a.contentType)
	header.Set("Cache-Control", cacheControl)
	header.Set("X-Content-Type-Options", "nosniff")
	content, etag := a.content, a.etag
	if gz := a.gzipContent(); gz != nil {
		header.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			header.Set("Content-Encoding", "gzip")
			// Each encoding is its own representation, with its own validator.
			content, etag = gz, strings.TrimSuffix(a.etag, `"`)+`-gzip"`
		}
	}
	header.Set("ETag", etag)
	// ServeContent answers If-None-Match with 304, HEAD without a body, and Range requests.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip: listed, or covered by "*", with a
// weight above zero. An explicit gzip entry wins over "*".
func acceptsGzip(values []string) bool {
	gzip, star := -1.0, -1.0 // -1: not listed
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, param := range strings.Split(params, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
				if strings.EqualFold(name, "q") {
					if f, err := strconv.ParseFloat(value, 64); err == nil {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzip = q
			case "*":
				star = q
			}
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}

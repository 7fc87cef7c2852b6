package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/queryui"
)

// TestQueryUI_GraphsARangeQueryAsTheChosenTenant drives the query page in headless Chromium like a user:
// it picks a tenant, gets the tenant's metric name from autocompletion, types a range query, runs it and
// waits for the graph of its series; then it checks the tooltip, a parse error from the API, and that the
// tenant is remembered. The page is served by queryui.Handler in this process in front of a real strata
// (the proxy stands for strata's own route to it) so that the test also sees which tenant each API call
// the browser makes carries.
func TestQueryUI_GraphsARangeQueryAsTheChosenTenant(t *testing.T) {
	chromium := chromiumPath(t)
	p := startStrata(t, t.TempDir())

	const tenant, otherTenant = "ui-team", "ui-other-team"
	now := time.Now()
	for _, c := range []struct{ tenant, metric string }{
		{tenant, "queryui_requests_total"},
		{otherTenant, "queryui_other_tenants_total"},
	} {
		req := &prompb.WriteRequest{}
		for _, path := range []string{"/home", "/search"} {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: c.metric}, {Name: "path", Value: path}}}
			// A counter over the last 30 minutes, one sample a minute; /search grows twice as fast.
			for i := 30; i >= 0; i-- {
				rate := float64(len(path)) // 5 and 7 per minute: the lines do not overlap
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: now.Add(-time.Duration(i) * time.Minute).UnixMilli(), Value: float64(30-i) * rate})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		code, body := push(t, p.url("/api/v1/push"), c.tenant, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}

	apiCalls := &recordedCalls{}
	strataURL, err := url.Parse(p.url("/"))
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(strataURL)
	mux := http.NewServeMux()
	mux.Handle("/query", queryui.Handler())
	mux.Handle("/query/", queryui.Handler())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/prometheus/api/v1/") {
			apiCalls.add(r)
		}
		proxy.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := newBrowser(t, chromium)
	saveArtifact := artifacts(t)
	console := collectConsoleErrors(t, ctx)

	// Navigate and pick the tenant: typed, so the page sees input events as from a user.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/query"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		chromedp.SendKeys(chromedp.ID("tenant"), tenant),
		chromedp.Click(chromedp.CSS(".cm-content")),
		chromedp.SendKeys(chromedp.CSS(".cm-content"), "queryui_"),
	))

	// Autocompletion offers the tenant's metric name, and not the other tenant's with the same prefix.
	completions := waitForText(t, ctx, ".cm-tooltip-autocomplete", "queryui_requests_total")
	require.NotContains(t, completions, "queryui_other_tenants_total")
	require.NotEmpty(t, apiCalls.matching("/prometheus/api/v1/label/__name__/values"), "the metric names came from the label values endpoint")

	// Replace the prefix with a range query, typed key by key. The editor closes brackets as they open,
	// and typing the closing one steps over it, so the text ends as typed.
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape))) // closes the completion list
	for range len("queryui_") {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Backspace)))
	}
	const expr = `sum by (path) (rate(queryui_requests_total[5m]))`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(".cm-content"), expr),
		chromedp.KeyEvent(kb.Escape),
	))
	typed, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".cm-content")))
	require.NoError(t, err)
	require.Equal(t, expr, typed)

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("run"))))
	legend := waitForText(t, ctx, "#result .legend", `{path="/search"}`)
	require.Contains(t, legend, `{path="/home"}`)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#result canvas"))))
	items, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#result .legend li').length`))
	require.NoError(t, err)
	require.Equal(t, 2, items, "one line per series")
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Contains(t, status, "matrix, 2 series")

	// Hovering the plot shows a tooltip with a series' labels and its value.
	box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
		const r = document.querySelector('#result .u-over').getBoundingClientRect();
		return [r.left, r.top, r.width, r.height];
	})()`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0]+box[2]*0.8, box[1]+box[3]*0.5)))
	tooltip := waitForText(t, ctx, "#result .graph-tooltip", "path=")
	require.Regexp(t, `\{path="/(home|search)"\}`, tooltip)

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	saveArtifact("query-ui-graph.png", shot)

	// Every API call the page made carried the tenant.
	calls := apiCalls.all()
	require.NotEmpty(t, apiCalls.matching("/prometheus/api/v1/query_range"))
	for _, c := range calls {
		require.Equal(t, tenant, c.tenant, "X-Scope-OrgID of %s", c.path)
	}

	// An expression the API cannot parse shows the API's own message.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".cm-content")),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent(kb.Backspace),
		chromedp.SendKeys(chromedp.CSS(".cm-content"), "sum(rate(queryui_requests_total[5m]) +"),
		chromedp.KeyEvent(kb.Escape),
		chromedp.Click(chromedp.ID("run")),
	))
	errText := waitForText(t, ctx, "#error", "bad_data")
	require.Contains(t, errText, "parse error")

	// The tenant is remembered across visits, and the query in the URL runs again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/query#"+url.Values{"expr": {"queryui_requests_total"}, "mode": {"instant"}}.Encode())))
	require.NoError(t, chromedp.Do(ctx, chromedp.Reload()))
	table := waitForText(t, ctx, "#result table", `queryui_requests_total{path="/search"}`)
	require.Contains(t, table, "210", "the /search counter's last value, 30 minutes at 7 a minute")
	remembered, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("tenant")))
	require.NoError(t, err)
	require.Equal(t, tenant, remembered)
	shot, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	saveArtifact("query-ui-table.png", shot)

	require.Empty(t, console.errors(), "the page logged errors")
}

// chromiumPath finds Debian's chromium. A missing browser fails rather than skips: a skipped UI test
// reads as a pass.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not on PATH: run `make test-deps` (scripts/install-test-deps.sh installs it with apt-get)")
	return ""
}

// newBrowser starts headless Chromium and returns a context for one tab, ended with the test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.WindowSize(1280, 900),
		// Tests run as root in CI's containers, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.Flag("user-data-dir", t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	require.NoError(t, chromedp.Do(tabCtx), "start chromium")
	return tabCtx
}

// waitForText polls until the element's text contains want and returns that text; on timeout it fails
// with the text the element had.
func waitForText(t *testing.T, ctx context.Context, selector, want string) string {
	t.Helper()
	pollCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(pollCtx, chromedp.PollFunction[bool](
		`(selector, want) => { const el = document.querySelector(selector); return !!el && el.textContent.includes(want); }`,
		chromedp.WithPollingArgs(selector, want),
		chromedp.WithPollingInterval(50*time.Millisecond),
	))
	if err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s never contained %q: %v\npage text:\n%s", selector, want, err, page)
	}
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(selector)))
	require.NoError(t, err)
	return text
}

// artifacts saves files for a person to look at after the test: under $STRATA_TEST_ARTIFACTS when set
// (CI keeps that directory), else in a directory under os.TempDir() that outlives the test.
func artifacts(t *testing.T) func(name string, content []byte) {
	t.Helper()
	dir := os.Getenv("STRATA_TEST_ARTIFACTS")
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "strata-test-artifacts-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return func(name string, content []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, content, 0o644))
		t.Logf("saved %s (%d bytes, %d as base64)", path, len(content), base64.StdEncoding.EncodedLen(len(content)))
	}
}

// recordedCalls are the API requests the browser sent through the test's proxy.
type recordedCalls struct {
	mu    sync.Mutex
	calls []recordedCall
}

type recordedCall struct {
	path, tenant string
}

func (c *recordedCalls) add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, recordedCall{path: r.URL.Path, tenant: r.Header.Get("X-Scope-OrgID")})
}

func (c *recordedCalls) all() []recordedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]recordedCall(nil), c.calls...)
}

func (c *recordedCalls) matching(path string) []recordedCall {
	var out []recordedCall
	for _, call := range c.all() {
		if call.path == path {
			out = append(out, call)
		}
	}
	return out
}

// consoleErrors collects the page's uncaught exceptions and console errors (CSP violations among them),
// but not the browser's network log, which reports every 4xx answer, including the ones the test asks for.
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func collectConsoleErrors(t *testing.T, ctx context.Context) *consoleErrors {
	t.Helper()
	c := &consoleErrors{}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				c.mu.Lock()
				c.msgs = append(c.msgs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *consoleErrors) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

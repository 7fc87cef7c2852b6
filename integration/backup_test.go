package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// backupBucket is a bucket as the backup test needs it: Strata's flags, stratatool's flags, where its
// objects lie on disk (to wait for them) and a way to destroy it.
type backupBucket struct {
	args    []string // Strata's -blocks-storage.* flags
	dir     string   // the directory holding the bucket's objects
	destroy func()
}

// toolArgs are the bucket's flags for stratatool, whose flags are --<prefix>blocks-storage.*.
func (b *backupBucket) toolArgs(prefix string) []string {
	var args []string
	for _, a := range b.args {
		args = append(args, "--"+prefix+strings.TrimPrefix(a, "-"))
	}
	return args
}

func filesystemBackupBucket(t *testing.T) *backupBucket {
	dir := filepath.Join(t.TempDir(), "bucket")
	return &backupBucket{
		args:    []string{"-blocks-storage.backend=filesystem", "-blocks-storage.filesystem.dir=" + dir},
		dir:     dir,
		destroy: func() { require.NoError(t, os.RemoveAll(dir)) },
	}
}

func s3BackupBucket(t *testing.T) *backupBucket {
	s := startVersityGW(t)
	return &backupBucket{
		args: s.strataArgs(),
		dir:  filepath.Join(s.root, s3Bucket),
		destroy: func() {
			s.stop()
			require.NoError(t, os.RemoveAll(s.root))
		},
	}
}

// TestBackup_DestroyEverythingAndRestore follows docs/operations.md "Backups and restore": a Strata with
// the data of three tenants shipped to its bucket, rule groups and Alertmanager configurations set
// through their APIs and a silence, is backed up with `stratatool bucket backup` while it runs; then its
// process, disk and bucket are destroyed; `stratatool bucket restore` fills a fresh bucket and a fresh
// Strata on it answers every recorded query identically, with the rules, configurations and silence
// back. On the filesystem bucket (backed up into a directory) and on a real S3 server (backed up into a
// bucket of another S3 server).
func TestBackup_DestroyEverythingAndRestore(t *testing.T) {
	t.Run("filesystem", func(t *testing.T) {
		backupDir := filepath.Join(t.TempDir(), "backup")
		testBackupRestore(t, filesystemBackupBucket, []string{"--to", backupDir}, []string{"--from", backupDir})
	})
	t.Run("s3", func(t *testing.T) {
		backup := s3BackupBucket(t)
		testBackupRestore(t, s3BackupBucket, backup.toolArgs("to."), backup.toolArgs("from."))
	})
}

var backupTenants = []string{"team-a", "team-b", "team-c"}

func testBackupRestore(t *testing.T, newBucket func(*testing.T) *backupBucket, toArgs, fromArgs []string) {
	stratatool := stratatoolBinary(t)
	work := t.TempDir()
	bkt := newBucket(t)
	dataDir := filepath.Join(work, "data")
	s := startStrata(t, dataDir, append([]string{
		"-ingester.max-global-exemplars-per-user=10000",
		"-alertmanager.configs.poll-interval=1s",
		"-alertmanager.persist-interval=1s",
	}, bkt.args...)...)

	// Two hours of samples per tenant, shipped to the bucket.
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	const samples = 100
	for i, tenantID := range backupTenants {
		code, body := push(t, s.url("/api/v1/push"), tenantID, backupHistory(i, base, samples))
		require.Equal(t, http.StatusNoContent, code, body)
	}
	resp, err := http.Post(s.url("/ingester/flush?wait=true"), "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	shipped := 0
	for _, tenantID := range backupTenants {
		metas, err := filepath.Glob(filepath.Join(bkt.dir, tenantID, "*", "meta.json"))
		require.NoError(t, err)
		require.NotEmpty(t, metas, "tenant %s has blocks in the bucket", tenantID)
		shipped += len(metas)
	}

	// Rule groups for A and B, Alertmanager configurations for A and C, a silence in A's Alertmanager.
	rules := writeFile(t, work, "rules.yml", `namespace: backups
groups:
- name: requests
  interval: 1m
  rules:
  - record: job:backup_requests:rate5m
    expr: sum by (job) (rate(backup_requests_total[5m]))
  - alert: HotSite
    expr: backup_temperature > 100
    for: 5m
`)
	for _, tenantID := range []string{"team-a", "team-b"} {
		runTool(t, stratatool, "rules", "load", "--address="+s.url(""), "--id="+tenantID, rules)
	}
	amConfig := writeFile(t, work, "alertmanager.yml", `route:
  receiver: pager
  group_by: [alertname]
receivers:
- name: pager
  webhook_configs:
  - url: http://pager.example.com/hook
`)
	for _, tenantID := range []string{"team-a", "team-c"} {
		runTool(t, stratatool, "alertmanager", "load", "--address="+s.url(""), "--id="+tenantID, amConfig)
	}
	silenceID := addSilence(t, s, "team-a")
	require.Eventually(t, func() bool {
		state, err := os.ReadFile(filepath.Join(bkt.dir, "alertmanager", "state", "team-a", "fullstate"))
		return err == nil && bytes.Contains(state, []byte(silenceID))
	}, 30*time.Second, 100*time.Millisecond, "the silence is persisted to the bucket")

	recorded := recordBackupAnswers(t, s, base, samples)

	// The backup, while Strata runs; a second run finds nothing new.
	out := runTool(t, stratatool, append(append([]string{"bucket", "backup"}, bkt.toolArgs("")...), toArgs...)...)
	t.Logf("backup:\n%s", out)
	require.Regexp(t, `backup: 3 tenants, \d+ blocks copied, 0 already there, 0 deleted from the source during the copy, 0 failed, 0 removed`, lastLine(out))
	out = runTool(t, stratatool, append(append([]string{"bucket", "backup"}, bkt.toolArgs("")...), toArgs...)...)
	require.Regexp(t, `backup: 3 tenants, 0 blocks copied, \d+ already there, 0 deleted from the source during the copy, 0 failed, 0 removed`, lastLine(out))

	// Destroy everything: the process, its disk, the bucket.
	s.kill()
	require.NoError(t, os.RemoveAll(dataDir))
	bkt.destroy()

	// Restore into a fresh bucket, then start a fresh Strata on it.
	fresh := newBucket(t)
	out = runTool(t, stratatool, append(append([]string{"bucket", "restore"}, fromArgs...), fresh.toolArgs("")...)...)
	t.Logf("restore:\n%s", out)
	require.Regexp(t, `restore: 3 tenants, \d+ blocks copied, 0 already there, 0 deleted from the source during the copy, 0 failed, 0 removed`, lastLine(out))
	restored := startStrata(t, filepath.Join(work, "data-restored"), append([]string{
		// No -querier.query-store-after=0s: the restored blocks are marked so, and read however recent.
		"-ingester.max-global-exemplars-per-user=10000",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-querier.bucket-index-ttl=1s",
		"-alertmanager.configs.poll-interval=1s",
	}, fresh.args...)...)

	var got map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = recordBackupAnswers(t, restored, base, samples)
		if equalAnswers(recorded, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for key, want := range recorded {
		require.JSONEq(t, want, got[key], "%s after the restore", key)
	}
	t.Logf("%d blocks shipped; %d answers identical after the restore", shipped, len(recorded))

	var silences []struct {
		ID     string `json:"id"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	require.Eventually(t, func() bool {
		code, body := getRaw(t, restored.url("/alertmanager/api/v2/silences"), "team-a")
		return code == http.StatusOK && json.Unmarshal([]byte(body), &silences) == nil && len(silences) == 1
	}, 30*time.Second, 200*time.Millisecond, "the silence is back")
	require.Equal(t, silenceID, silences[0].ID)
	require.Equal(t, "active", silences[0].Status.State)

	// The restored blocks, as stratatool lists them from the new bucket; one marked and undeleted.
	list := runTool(t, stratatool, append([]string{"blocks", "list", "--tenant=team-a"}, fresh.toolArgs("")...)...)
	ids := regexp.MustCompile(`(?m)^team-a\s+(\w{26})\s.*\s(ingester|compactor)\s+-$`).FindAllStringSubmatch(list, -1)
	require.NotEmpty(t, ids, list)
	block := ids[0][1]
	out = runTool(t, stratatool, append([]string{"blocks", "mark-deletion", "--tenant=team-a", block}, fresh.toolArgs("")...)...)
	require.Contains(t, out, "marked for deletion")
	list = runTool(t, stratatool, append([]string{"blocks", "list", "--tenant=team-a", "--show-deleted"}, fresh.toolArgs("")...)...)
	require.Regexp(t, block+`\s.*Z manual\n`, list)
	out = runTool(t, stratatool, append([]string{"blocks", "undelete", "--tenant=team-a", block}, fresh.toolArgs("")...)...)
	require.Contains(t, out, "deletion mark removed")
	list = runTool(t, stratatool, append([]string{"blocks", "list", "--tenant=team-a"}, fresh.toolArgs("")...)...)
	require.Regexp(t, block+`\s.*\s-\n`, list)
}

// backupHistory is a tenant's history: request counters of 2 jobs × 2 instances and the temperatures of
// 2 sites, a sample a minute from base; values differ between tenants.
func backupHistory(tenantIndex int, base time.Time, samples int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	add := func(value func(i int) float64, labels ...string) {
		ts := prompb.TimeSeries{}
		for j := 0; j < len(labels); j += 2 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: labels[j], Value: labels[j+1]})
		}
		for i := range samples {
			at := base.Add(time.Duration(i) * time.Minute).UnixMilli()
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at, Value: value(i)})
			if i%10 == 0 {
				// Exemplars are kept in the blocks' exemplar files, which backups copy.
				ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%d-%d", tenantIndex, i)}}, Value: value(i), Timestamp: at})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	for j, job := range []string{"api", "worker"} {
		for k, instance := range []string{"host-1", "host-2"} {
			rate := float64(1 + tenantIndex + 2*j + k)
			add(func(i int) float64 { return rate * float64(i*60) }, "__name__", "backup_requests_total", "instance", instance, "job", job)
		}
	}
	for k, site := range []string{"north", "south"} {
		add(func(i int) float64 { return 20 + float64(tenantIndex*10+k) + float64(i%7)/4 }, "__name__", "backup_temperature", "site", site)
	}
	return req
}

// recordBackupAnswers asks every tenant a set of read API questions over the history and returns the
// answers' data (and the rules and Alertmanager configuration as the config APIs answer them) by question.
func recordBackupAnswers(t *testing.T, s *strataProcess, base time.Time, samples int) map[string]string {
	t.Helper()
	start, end := formatTime(base), formatTime(base.Add(time.Duration(samples-1)*time.Minute))
	mid := formatTime(base.Add(time.Duration(samples/2) * time.Minute))
	questions := []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query_range", url.Values{"query": {"backup_requests_total"}, "start": {start}, "end": {end}, "step": {"60"}}},
		{"/api/v1/query_range", url.Values{"query": {"sum by (job) (rate(backup_requests_total[5m]))"}, "start": {start}, "end": {end}, "step": {"300"}}},
		{"/api/v1/query_range", url.Values{"query": {"max_over_time(backup_temperature[30m])"}, "start": {start}, "end": {end}, "step": {"600"}}},
		{"/api/v1/query", url.Values{"query": {"backup_temperature"}, "time": {mid}}},
		{"/api/v1/query", url.Values{"query": {"count by (__name__) ({__name__=~\"backup_.+\"})"}, "time": {mid}}},
		{"/api/v1/series", url.Values{"match[]": {`{__name__=~"backup_.+"}`}, "start": {start}, "end": {end}}},
		{"/api/v1/labels", url.Values{"start": {start}, "end": {end}}},
		{"/api/v1/label/job/values", url.Values{"start": {start}, "end": {end}}},
		{"/api/v1/query_exemplars", url.Values{"query": {"backup_requests_total"}, "start": {start}, "end": {end}}},
	}
	answers := map[string]string{}
	for _, tenantID := range backupTenants {
		for _, q := range questions {
			code, resp := getAPI(t, s.url("/prometheus"), q.path, tenantID, q.params)
			require.Equal(t, http.StatusOK, code, "%s %v: %s", q.path, q.params, resp.Error)
			answers[tenantID+" "+q.path+"?"+q.params.Encode()] = string(resp.Data)
		}
		for _, path := range []string{"/prometheus/config/v1/rules", "/api/v1/alerts"} {
			code, body := getRaw(t, s.url(path), tenantID)
			require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, code, "%s: %s", path, body)
			answers[tenantID+" "+path] = jsonString(t, itoa(code)+" "+body)
		}
	}
	// The answers hold data: a restore onto nothing must not compare equal to nothing.
	require.Contains(t, answers["team-a /api/v1/query_range?"+questions[0].params.Encode()], `"instance":"host-2"`)
	require.Contains(t, answers["team-b /prometheus/config/v1/rules"], "job:backup_requests:rate5m")
	require.Contains(t, answers["team-c /api/v1/alerts"], "pager.example.com")
	require.Contains(t, answers["team-b /api/v1/alerts"], "404")
	require.Contains(t, answers["team-a /api/v1/query_exemplars?"+questions[len(questions)-1].params.Encode()], `"trace_id":"0-90"`)
	return answers
}

func equalAnswers(want, got map[string]string) bool {
	for key, w := range want {
		var a, b any
		if json.Unmarshal([]byte(w), &a) != nil || json.Unmarshal([]byte(got[key]), &b) != nil {
			return false
		}
		wj, _ := json.Marshal(a)
		gj, _ := json.Marshal(b)
		if !bytes.Equal(wj, gj) {
			return false
		}
	}
	return true
}

func jsonString(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

// getRaw GETs target as tenantID and returns the status and body.
func getRaw(t *testing.T, target, tenantID string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", tenantID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// addSilence adds a silence of a day to the tenant's Alertmanager (once its configuration is loaded) and
// returns its ID.
func addSilence(t *testing.T, s *strataProcess, tenantID string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": "HotSite", "isRegex": false, "isEqual": true}},
		"startsAt":  time.Now().UTC().Format(time.RFC3339),
		"endsAt":    time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"createdBy": "backup test",
		"comment":   "kept across a restore",
	})
	require.NoError(t, err)
	var id string
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodPost, s.url("/alertmanager/api/v2/silences"), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", tenantID)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var created struct {
			SilenceID string `json:"silenceID"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&created) != nil {
			return false
		}
		id = created.SilenceID
		return id != ""
	}, 30*time.Second, 200*time.Millisecond, "the tenant's Alertmanager takes a silence")
	return id
}

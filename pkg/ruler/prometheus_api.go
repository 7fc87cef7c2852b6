package ruler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ruler/rulerpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Paths of the Prometheus API that the ruler answers.
const (
	RulesPath  = "/prometheus/api/v1/rules"
	AlertsPath = "/prometheus/api/v1/alerts"
)

// The JSON of Prometheus' rules and alerts API, as Mimir serves it: a group's file is its namespace.

type apiResponse struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

type ruleGroupJSON struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"` // alertingRuleJSON or recordingRuleJSON
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type alertingRuleJSON struct {
	State          string        `json:"state"`
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Duration       float64       `json:"duration"`
	KeepFiringFor  float64       `json:"keepFiringFor"`
	Labels         labels.Labels `json:"labels"`
	Annotations    labels.Labels `json:"annotations"`
	Alerts         []alertJSON   `json:"alerts"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

type recordingRuleJSON struct {
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Labels         labels.Labels `json:"labels"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

type alertJSON struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

// ruleFilter is what the query parameters of /rules select.
type ruleFilter struct {
	alerting, recording  bool // the types of rule shown
	names, groups, files map[string]bool
	excludeAlerts        bool
}

func parseRuleFilter(r *http.Request) (ruleFilter, string) {
	if err := r.ParseForm(); err != nil {
		return ruleFilter{}, "invalid query parameters: " + err.Error()
	}
	f := ruleFilter{
		alerting: true, recording: true,
		names:  setOf(r.Form["rule_name[]"]),
		groups: setOf(r.Form["rule_group[]"]),
		files:  setOf(r.Form["file[]"]),
	}
	switch t := strings.ToLower(r.Form.Get("type")); t {
	case "":
	case "alert":
		f.recording = false
	case "record":
		f.alerting = false
	default:
		return ruleFilter{}, "unsupported type " + strconv.Quote(t) + ": use alert or record"
	}
	switch v := r.Form.Get("exclude_alerts"); v {
	case "", "false":
	case "true":
		f.excludeAlerts = true
	default:
		return ruleFilter{}, "exclude_alerts must be true or false, not " + strconv.Quote(v)
	}
	return f, ""
}

func setOf(values []string) map[string]bool {
	if len(values) == 0 {
		return nil // no filter
	}
	s := make(map[string]bool, len(values))
	for _, v := range values {
		s[v] = true
	}
	return s
}

// ServeRules answers GET /prometheus/api/v1/rules for the request's tenant: its groups being
// evaluated by every ruler of the ring, sorted by file and name, filtered by type=alert|record,
// rule_name[], rule_group[], file[] (the namespace) and exclude_alerts. A group all of whose rules are
// filtered out is left out. A ruler that cannot be asked fails the request: a partial list would show
// rules as gone.
func (r *Ruler) ServeRules(w http.ResponseWriter, req *http.Request) {
	if !allowGet(w, req) {
		return
	}
	tenantID, ok := tenant.FromContextOr401(w, req)
	if !ok {
		return
	}
	f, msg := parseRuleFilter(req)
	if msg != "" {
		writeAPIError(w, http.StatusBadRequest, "bad_data", msg)
		return
	}
	groups, err := r.gatherRules(req.Context(), tenantID, f)
	if err != nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	body := []byte(`{"status":"success","data":{"groups":[`)
	for i, g := range groups {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, g.Json...)
	}
	body = append(body, "]}}"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// ServeAlerts answers GET /prometheus/api/v1/alerts for the request's tenant: every pending and
// firing alert of its groups, on every ruler.
func (r *Ruler) ServeAlerts(w http.ResponseWriter, req *http.Request) {
	if !allowGet(w, req) {
		return
	}
	tenantID, ok := tenant.FromContextOr401(w, req)
	if !ok {
		return
	}
	groups, err := r.gatherRules(req.Context(), tenantID, ruleFilter{alerting: true})
	if err != nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	out := struct {
		Alerts []json.RawMessage `json:"alerts"`
	}{Alerts: []json.RawMessage{}}
	for _, g := range groups {
		var alerting struct {
			Rules []struct {
				Alerts []json.RawMessage `json:"alerts"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(g.Json, &alerting); err != nil {
			writeAPIError(w, http.StatusInternalServerError, "internal", "decoding a ruler's groups: "+err.Error())
			return
		}
		for _, rule := range alerting.Rules {
			out.Alerts = append(out.Alerts, rule.Alerts...)
		}
	}
	writeAPIData(w, out)
}

// Rules implements rulerpb.RulerServer: the groups of the call's tenant that this ruler evaluates.
func (r *Ruler) Rules(ctx context.Context, req *rulerpb.RulesRequest) (*rulerpb.RulesResponse, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	f := ruleFilter{
		alerting: req.Type != "record", recording: req.Type != "alert",
		names: setOf(req.RuleNames), groups: setOf(req.RuleGroups), files: setOf(req.Files),
		excludeAlerts: req.ExcludeAlerts,
	}
	groups, err := r.localRules(tenantID, f)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rulerpb.RulesResponse{Groups: groups}, nil
}

// gatherRules asks every ruler (this one in process) for the tenant's groups, sorted by namespace and
// name. A group seen twice, while it moves between rulers, is shown once.
func (r *Ruler) gatherRules(ctx context.Context, tenantID string, f ruleFilter) ([]*rulerpb.RuleGroup, error) {
	if r.deps.Peers == nil {
		return r.localRules(tenantID, f)
	}
	addrs, err := r.deps.Peers.Addresses()
	if err != nil {
		return nil, fmt.Errorf("listing the rulers: %w", err)
	}
	req := &rulerpb.RulesRequest{RuleNames: keysOf(f.names), RuleGroups: keysOf(f.groups), Files: keysOf(f.files), ExcludeAlerts: f.excludeAlerts}
	switch {
	case !f.recording:
		req.Type = "alert"
	case !f.alerting:
		req.Type = "record"
	}
	ctx = tenant.NewContext(ctx, tenantID)
	results := make([][]*rulerpb.RuleGroup, len(addrs))
	g, gctx := errgroup.WithContext(ctx)
	for i, addr := range addrs {
		g.Go(func() error {
			if r.deps.Peers.IsLocal(addr) {
				groups, err := r.localRules(tenantID, f)
				results[i] = groups
				return err
			}
			client, err := r.deps.Peers.Client(addr)
			if err != nil {
				return fmt.Errorf("ruler %s: %w", addr, err)
			}
			resp, err := client.Rules(gctx, req)
			if err != nil {
				return fmt.Errorf("ruler %s: %w", addr, err)
			}
			results[i] = resp.Groups
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var all []*rulerpb.RuleGroup
	for _, groups := range results {
		all = append(all, groups...)
	}
	slices.SortStableFunc(all, func(a, b *rulerpb.RuleGroup) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return slices.CompactFunc(all, func(a, b *rulerpb.RuleGroup) bool {
		return a.Namespace == b.Namespace && a.Name == b.Name
	}), nil
}

// localRules returns the tenant's groups this ruler evaluates, filtered, each encoded as in the
// answer of /api/v1/rules.
func (r *Ruler) localRules(tenantID string, f ruleFilter) ([]*rulerpb.RuleGroup, error) {
	var out []*rulerpb.RuleGroup
	for _, g := range sortedGroups(r.ruleGroups(tenantID)) {
		file := namespaceOfFile(g.File())
		if (f.groups != nil && !f.groups[g.Name()]) || (f.files != nil && !f.files[file]) {
			continue
		}
		gj := ruleGroupJSON{
			Name:           g.Name(),
			File:           file,
			Rules:          []any{},
			Interval:       g.Interval().Seconds(),
			Limit:          g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(),
			LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rule := range g.Rules() {
			if f.names != nil && !f.names[rule.Name()] {
				continue
			}
			switch rule := rule.(type) {
			case *rules.AlertingRule:
				if f.alerting {
					gj.Rules = append(gj.Rules, alertingRuleOf(rule, f.excludeAlerts))
				}
			case *rules.RecordingRule:
				if f.recording {
					gj.Rules = append(gj.Rules, recordingRuleOf(rule))
				}
			}
		}
		if len(gj.Rules) == 0 {
			continue
		}
		data, err := json.Marshal(gj)
		if err != nil {
			return nil, fmt.Errorf("encoding group %s of namespace %s: %w", g.Name(), file, err)
		}
		out = append(out, &rulerpb.RuleGroup{Namespace: file, Name: g.Name(), Json: data})
	}
	return out, nil
}

func keysOf(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// allowGet answers 405 to anything but GET and HEAD, as Prometheus does for these paths.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeAPIError(w, http.StatusMethodNotAllowed, "bad_data", r.Method+" is not allowed: use GET")
	return false
}

// sortedGroups sorts groups by namespace and name (rules.Manager sorts them by file name, which is
// the encoded namespace).
func sortedGroups(groups []*rules.Group) []*rules.Group {
	slices.SortFunc(groups, func(a, b *rules.Group) int {
		if c := strings.Compare(namespaceOfFile(a.File()), namespaceOfFile(b.File())); c != 0 {
			return c
		}
		return strings.Compare(a.Name(), b.Name())
	})
	return groups
}

func alertingRuleOf(rule *rules.AlertingRule, excludeAlerts bool) alertingRuleJSON {
	var alerts []alertJSON
	if !excludeAlerts {
		alerts = alertsOf(rule)
	}
	if alerts == nil {
		alerts = []alertJSON{}
	}
	return alertingRuleJSON{
		State:          rule.State().String(),
		Name:           rule.Name(),
		Query:          rule.Query().String(),
		Duration:       rule.HoldDuration().Seconds(),
		KeepFiringFor:  rule.KeepFiringFor().Seconds(),
		Labels:         rule.Labels(),
		Annotations:    rule.Annotations(),
		Alerts:         alerts,
		Health:         string(rule.Health()),
		LastError:      errorString(rule.LastError()),
		EvaluationTime: rule.GetEvaluationDuration().Seconds(),
		LastEvaluation: rule.GetEvaluationTimestamp(),
		Type:           "alerting",
	}
}

func recordingRuleOf(rule *rules.RecordingRule) recordingRuleJSON {
	return recordingRuleJSON{
		Name:           rule.Name(),
		Query:          rule.Query().String(),
		Labels:         rule.Labels(),
		Health:         string(rule.Health()),
		LastError:      errorString(rule.LastError()),
		EvaluationTime: rule.GetEvaluationDuration().Seconds(),
		LastEvaluation: rule.GetEvaluationTimestamp(),
		Type:           "recording",
	}
}

func alertsOf(rule *rules.AlertingRule) []alertJSON {
	active := rule.ActiveAlerts()
	out := make([]alertJSON, 0, len(active))
	for _, a := range active {
		aj := alertJSON{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
		}
		if !a.KeepFiringSince.IsZero() {
			aj.KeepFiringSince = &a.KeepFiringSince
		}
		out = append(out, aj)
	}
	return out
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeAPIData(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, apiResponse{Status: "success", Data: data})
}

// writeAPIError answers with Prometheus' error envelope.
func writeAPIError(w http.ResponseWriter, code int, errorType, msg string) {
	writeJSON(w, code, apiResponse{Status: "error", ErrorType: errorType, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

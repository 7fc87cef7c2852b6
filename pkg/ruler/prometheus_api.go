package ruler

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
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

type ruleDiscovery struct {
	Groups []ruleGroupJSON `json:"groups"`
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

type alertDiscovery struct {
	Alerts []alertJSON `json:"alerts"`
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
// evaluated, sorted by file and name, filtered by type=alert|record, rule_name[], rule_group[],
// file[] (the namespace) and exclude_alerts. A group all of whose rules are filtered out is left out.
// Only this ruler's groups: with sharding, the other rulers' will have to be asked too.
func (r *Ruler) ServeRules(w http.ResponseWriter, req *http.Request) {
	if !allowGet(w, req) {
		return
	}
	tenantID, ok := tenantOf(w, req)
	if !ok {
		return
	}
	f, msg := parseRuleFilter(req)
	if msg != "" {
		writeAPIError(w, http.StatusBadRequest, "bad_data", msg)
		return
	}
	out := ruleDiscovery{Groups: []ruleGroupJSON{}}
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
		if len(gj.Rules) > 0 {
			out.Groups = append(out.Groups, gj)
		}
	}
	writeAPIData(w, out)
}

// ServeAlerts answers GET /prometheus/api/v1/alerts for the request's tenant: every pending and
// firing alert of its groups being evaluated.
func (r *Ruler) ServeAlerts(w http.ResponseWriter, req *http.Request) {
	if !allowGet(w, req) {
		return
	}
	tenantID, ok := tenantOf(w, req)
	if !ok {
		return
	}
	out := alertDiscovery{Alerts: []alertJSON{}}
	for _, g := range sortedGroups(r.ruleGroups(tenantID)) {
		for _, rule := range g.AlertingRules() {
			out.Alerts = append(out.Alerts, alertsOf(rule)...)
		}
	}
	writeAPIData(w, out)
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

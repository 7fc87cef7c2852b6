package ruler

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// ConfigRulesPath is where ConfigAPI serves; mount it there and under ConfigRulesPath + "/".
const ConfigRulesPath = "/prometheus/config/v1/rules"

// Limits are the per-tenant limits the config API enforces; *validation.Overrides has them. 0 is no limit.
type Limits interface {
	RulerMaxRulesPerRuleGroup(tenant string) int
	RulerMaxRuleGroupsPerTenant(tenant string) int
}

// ConfigAPI serves Mimir's rules configuration API for the tenant in each request's context:
//
//	GET    /prometheus/config/v1/rules                        every namespace's groups, as YAML
//	GET    /prometheus/config/v1/rules/{namespace}            one namespace's groups
//	GET    /prometheus/config/v1/rules/{namespace}/{group}    one group
//	POST   /prometheus/config/v1/rules/{namespace}            create or replace the group in the body
//	DELETE /prometheus/config/v1/rules/{namespace}/{group}    delete one group
//	DELETE /prometheus/config/v1/rules/{namespace}            delete every group of the namespace
//
// Names are path segments, percent-encoded by the client ("a%2Fb" is the namespace "a/b"). A name
// that is "." or ".." needs its dots encoded too ("%2E%2E"): as plain dot-segments they are removed
// from the path before it arrives, as RFC 3986 says.
type ConfigAPI struct {
	store  rulestore.Store
	limits Limits
	parser parser.Parser
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewConfigAPI returns the API over store, enforcing limits on writes.
func NewConfigAPI(store rulestore.Store, limits Limits, logger *slog.Logger) *ConfigAPI {
	a := &ConfigAPI{store: store, limits: limits, parser: parser.NewParser(parser.Options{}), logger: logger, mux: http.NewServeMux()}
	// The mux matches each wildcard against one escaped path segment and unescapes it, so names may
	// hold '/'; a method another pattern of the path accepts gets 405 with an Allow header.
	a.mux.HandleFunc("GET "+ConfigRulesPath, a.listRuleGroups)
	a.mux.HandleFunc("GET "+ConfigRulesPath+"/{namespace}", a.listRuleGroups)
	a.mux.HandleFunc("GET "+ConfigRulesPath+"/{namespace}/{group}", a.getRuleGroup)
	a.mux.HandleFunc("POST "+ConfigRulesPath+"/{namespace}", a.setRuleGroup)
	a.mux.HandleFunc("DELETE "+ConfigRulesPath+"/{namespace}/{group}", a.deleteRuleGroup)
	a.mux.HandleFunc("DELETE "+ConfigRulesPath+"/{namespace}", a.deleteNamespace)
	return a
}

// ServeHTTP routes the request to its handler.
func (a *ConfigAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// pathNames returns the namespace and, when withGroup, the group of the request's path, or answers
// 400 when one is not a valid name (too long, not UTF-8).
func pathNames(w http.ResponseWriter, r *http.Request, withGroup bool) (namespace, group string, ok bool) {
	namespace = r.PathValue("namespace")
	err := rulestore.CheckName("namespace", namespace)
	if withGroup {
		group = r.PathValue("group")
		err = errors.Join(err, rulestore.CheckName("group", group))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", "", false
	}
	return namespace, group, true
}

func (a *ConfigAPI) listRuleGroups(w http.ResponseWriter, r *http.Request) {
	tenantID, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	namespace := ""
	if r.PathValue("namespace") != "" { // wildcards never match an empty segment
		if namespace, _, ok = pathNames(w, r, false); !ok {
			return
		}
	}
	groups, err := a.store.ListRuleGroups(r.Context(), tenantID, namespace)
	if err != nil {
		a.storeError(w, r, tenantID, err)
		return
	}
	// Mimir answers 200 with an empty map when there are no groups, for the tenant or the namespace
	// alike (grafana/mimir#434: a 404 could not be told from a wrong URL or a disabled API); so do we.
	writeYAML(w, groups)
}

func (a *ConfigAPI) getRuleGroup(w http.ResponseWriter, r *http.Request) {
	tenantID, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	namespace, group, ok := pathNames(w, r, true)
	if !ok {
		return
	}
	g, err := a.store.GetRuleGroup(r.Context(), tenantID, namespace, group)
	if err != nil {
		a.storeError(w, r, tenantID, err)
		return
	}
	writeYAML(w, g)
}

func (a *ConfigAPI) setRuleGroup(w http.ResponseWriter, r *http.Request) {
	tenantID, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	namespace, _, ok := pathNames(w, r, false)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRuleGroupBytes))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		http.Error(w, fmt.Sprintf("the body is larger than %d bytes, the most a rule group may take", mbe.Limit), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	g, err := decodeRuleGroup(body)
	if err == nil {
		// Counted before validating, which parses every rule: the limit also bounds that work.
		err = a.checkRulesPerGroup(tenantID, g)
	}
	if err == nil {
		err = validateRuleGroup(g, a.parser)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.checkGroupsPerTenant(r, tenantID, namespace, g.Name); err != nil {
		if errors.Is(err, errLimit) {
			http.Error(w, err.Error(), http.StatusBadRequest)
		} else {
			a.storeError(w, r, tenantID, err)
		}
		return
	}
	if err := a.store.SetRuleGroup(r.Context(), tenantID, namespace, g); err != nil {
		a.storeError(w, r, tenantID, err)
		return
	}
	a.logger.Debug("rule group set", "component", "ruler", "tenant", tenantID, "namespace", namespace, "group", g.Name)
	writeAccepted(w)
}

// errLimit is matched by the errors of a write over a tenant's limit.
var errLimit = errors.New("over a per-tenant limit")

// limitError says what crossed the limit of key and how to change it, as validation.LimitError does
// (without an error ID until docs/errors.md has a section for these limits).
func limitError(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s. To adjust the related per-tenant limit, configure -%s, or %s in the tenant's runtime overrides",
		errLimit, fmt.Sprintf(format, args...), validation.FlagOf(key), key)
}

func (a *ConfigAPI) checkRulesPerGroup(tenantID string, g rulefmt.RuleGroup) error {
	if limit := a.limits.RulerMaxRulesPerRuleGroup(tenantID); limit > 0 && len(g.Rules) > limit {
		return limitError("ruler_max_rules_per_rule_group", "rule group %q has %d rules, more than the limit of %d", g.Name, len(g.Rules), limit)
	}
	return nil
}

// checkGroupsPerTenant refuses a new group beyond the tenant's limit. Unlike Mimir, which counts the
// posted group as one more even when it replaces an existing one, a tenant at its limit can still
// change its groups.
func (a *ConfigAPI) checkGroupsPerTenant(r *http.Request, tenantID, namespace, group string) error {
	limit := a.limits.RulerMaxRuleGroupsPerTenant(tenantID)
	if limit <= 0 {
		return nil // no need to list the tenant's groups
	}
	existing, err := a.store.ListRuleGroups(r.Context(), tenantID, "")
	if err != nil {
		return err
	}
	n := 0
	for ns, groups := range existing {
		for _, g := range groups {
			if ns == namespace && g.Name == group {
				return nil
			}
		}
		n += len(groups)
	}
	if n+1 > limit {
		return limitError("ruler_max_rule_groups_per_tenant", "the tenant has %d rule groups, and the limit is %d", n, limit)
	}
	return nil
}

// deleteRuleGroup answers 404 for a group that does not exist, as Mimir does when its store reports
// it missing (Mimir's own answer then depends on the bucket: S3 deletes a missing object silently).
func (a *ConfigAPI) deleteRuleGroup(w http.ResponseWriter, r *http.Request) {
	tenantID, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	namespace, group, ok := pathNames(w, r, true)
	if !ok {
		return
	}
	if err := a.store.DeleteRuleGroup(r.Context(), tenantID, namespace, group); err != nil {
		a.storeError(w, r, tenantID, err)
		return
	}
	a.logger.Debug("rule group deleted", "component", "ruler", "tenant", tenantID, "namespace", namespace, "group", group)
	writeAccepted(w)
}

// deleteNamespace answers 404 for a namespace without groups, as Mimir does.
func (a *ConfigAPI) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	tenantID, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	namespace, _, ok := pathNames(w, r, false)
	if !ok {
		return
	}
	if err := a.store.DeleteNamespace(r.Context(), tenantID, namespace); err != nil {
		a.storeError(w, r, tenantID, err)
		return
	}
	a.logger.Debug("rule namespace deleted", "component", "ruler", "tenant", tenantID, "namespace", namespace)
	writeAccepted(w)
}

// storeError answers the error of a store call: the one place that maps them to statuses.
func (a *ConfigAPI) storeError(w http.ResponseWriter, r *http.Request, tenantID string, err error) {
	var idErr *tenant.InvalidIDError
	switch {
	case errors.Is(err, rulestore.ErrGroupNotFound), errors.Is(err, rulestore.ErrNamespaceNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, rulestore.ErrInvalidName), errors.As(err, &idErr):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, rulestore.ErrReadOnly):
		// Mimir answers 500 here, but retrying cannot help: the resource exists and can only be read.
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, err.Error(), http.StatusMethodNotAllowed)
	default:
		a.logger.Error("rule store failed", "component", "ruler", "tenant", tenantID, "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		http.Error(w, "rule store: "+err.Error(), http.StatusInternalServerError)
	}
}

// writeYAML answers 200 with v as YAML, as Mimir does.
func writeYAML(w http.ResponseWriter, v any) {
	data, err := yaml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(data)
}

// writeAccepted answers 202 with Mimir's body for a change it accepted.
func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"success","data":null,"errorType":"","error":""}`)
}

package rulestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// errLocalReadOnly is what every write to a LocalStore returns; it says what to do instead.
var errLocalReadOnly = fmt.Errorf("%w: rules come from files (-ruler-storage.backend=%s), change the files instead", ErrReadOnly, BackendLocal)

// ruleFileExtensions are the extensions of the rule files a LocalStore reads; a file's name without
// it is its namespace.
var ruleFileExtensions = []string{".yaml", ".yml"}

// LocalStore serves rule groups from Prometheus rule files that operators deploy: the groups of
// namespace ns of tenant t are those of the file "<dir>/<t>/<ns>.yaml" (or ".yml"). It is read-only
// and reads the files on every call, so changed files are seen at once.
type LocalStore struct {
	dir    string
	parser parser.Parser
	logger *slog.Logger
}

var _ Store = (*LocalStore)(nil)

// NewLocalStore returns the store of the rule files under dir.
func NewLocalStore(dir string, logger *slog.Logger) *LocalStore {
	return &LocalStore{dir: dir, parser: parser.NewParser(parser.Options{}), logger: logger}
}

// ListTenants implements Store: the directories under dir named by a valid tenant ID that hold at
// least one rule file.
func (s *LocalStore) ListTenants(context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list tenants of the local rule store: %w", err)
	}
	var tenants []string
	for _, e := range entries {
		if tenant.ValidateID(e.Name()) != nil {
			continue
		}
		if info, err := os.Stat(filepath.Join(s.dir, e.Name())); err != nil || !info.IsDir() {
			continue
		}
		files, err := s.ruleFiles(e.Name())
		if err != nil {
			return nil, err
		}
		if len(files) > 0 {
			tenants = append(tenants, e.Name())
		}
	}
	return tenants, nil // ReadDir sorts by name
}

// ruleFiles returns the path of each namespace's rule file of the tenant. Namespaces are found by
// listing the directory, never by joining a requested name into a path, so no name can reach a file
// outside it.
func (s *LocalStore) ruleFiles(tenantID string) (map[string]string, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, tenantID)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list rule files of tenant %s: %w", tenantID, err)
	}
	files := map[string]string{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !slices.Contains(ruleFileExtensions, ext) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		// Stat, not the entry's type, so that symlinked files (as config maps mount them) count.
		if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
			continue
		}
		ns := strings.TrimSuffix(e.Name(), ext)
		if other, ok := files[ns]; ok {
			return nil, fmt.Errorf("tenant %s: rule files %s and %s both hold namespace %q", tenantID, filepath.Base(other), e.Name(), ns)
		}
		files[ns] = path
	}
	return files, nil
}

// readFile parses and validates a rule file as Prometheus does. Names are checked against the legacy
// scheme, as the distributor checks the series that recording rules will write.
func (s *LocalStore) readFile(path string) ([]rulefmt.RuleGroup, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, s.parser, s.logger)
	if len(errs) > 0 {
		return nil, fmt.Errorf("rule file %s: %w", path, errors.Join(errs...))
	}
	return groups.Groups, nil
}

// ListRuleGroups implements Store.
func (s *LocalStore) ListRuleGroups(_ context.Context, tenantID, namespace string) (map[string][]rulefmt.RuleGroup, error) {
	files, err := s.ruleFiles(tenantID)
	if err != nil {
		return nil, err
	}
	byNamespace := make(map[string][]rulefmt.RuleGroup)
	for ns, path := range files {
		if namespace != "" && ns != namespace {
			continue
		}
		groups, err := s.readFile(path)
		if err != nil {
			return nil, err
		}
		if len(groups) > 0 {
			slices.SortFunc(groups, func(a, b rulefmt.RuleGroup) int { return strings.Compare(a.Name, b.Name) })
			byNamespace[ns] = groups
		}
	}
	return byNamespace, nil
}

// GetRuleGroup implements Store.
func (s *LocalStore) GetRuleGroup(_ context.Context, tenantID, namespace, group string) (rulefmt.RuleGroup, error) {
	files, err := s.ruleFiles(tenantID)
	if err != nil {
		return rulefmt.RuleGroup{}, err
	}
	if path, ok := files[namespace]; ok {
		groups, err := s.readFile(path)
		if err != nil {
			return rulefmt.RuleGroup{}, err
		}
		for _, g := range groups {
			if g.Name == group {
				return g, nil
			}
		}
	}
	return rulefmt.RuleGroup{}, fmt.Errorf("tenant %s, namespace %q, group %q: %w", tenantID, namespace, group, ErrGroupNotFound)
}

// SetRuleGroup implements Store: the local store is read-only.
func (s *LocalStore) SetRuleGroup(context.Context, string, string, rulefmt.RuleGroup) error {
	return errLocalReadOnly
}

// DeleteRuleGroup implements Store: the local store is read-only.
func (s *LocalStore) DeleteRuleGroup(context.Context, string, string, string) error {
	return errLocalReadOnly
}

// DeleteNamespace implements Store: the local store is read-only.
func (s *LocalStore) DeleteNamespace(context.Context, string, string) error {
	return errLocalReadOnly
}

package rulestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/thanos-io/objstore"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// maxObjectBytes bounds what a group object read from the bucket may hold, so that a foreign or
// corrupt object cannot take the process' memory. The config API accepts 1 MiB per group; its YAML
// re-encoding can be larger (quoting), not 8 times larger.
const maxObjectBytes = 8 << 20

// loadConcurrency is how many group objects ListRuleGroups reads at once.
const loadConcurrency = 8

// nameEncoding turns any namespace or group name into one object-key segment: URL-safe base64 has no
// '/', never gives "." or "..", and without padding adds nothing to strip. Strict decoding gives each
// name exactly one key.
var nameEncoding = base64.RawURLEncoding.Strict()

// BucketStore keeps rule groups in object storage: group g of namespace ns of tenant t is the object
// "<prefix>/<t>/<encoded ns>/<encoded g>", holding the group as YAML.
type BucketStore struct {
	bkt    objstore.Bucket // the part of the bucket under the prefix
	logger *slog.Logger
}

var _ Store = (*BucketStore)(nil)

// NewBucketStore returns the store in bkt under prefix (see Config.Prefix). Close does not close bkt,
// which its owner (the app's blocks bucket client) closes.
func NewBucketStore(bkt objstore.Bucket, prefix string, logger *slog.Logger) *BucketStore {
	return &BucketStore{bkt: objstore.NewPrefixedBucket(bkt, prefix), logger: logger}
}

func groupKey(namespace, group string) string {
	return namespacePrefix(namespace) + nameEncoding.EncodeToString([]byte(group))
}

func namespacePrefix(namespace string) string {
	return nameEncoding.EncodeToString([]byte(namespace)) + objstore.DirDelim
}

// parseGroupKey returns the names of key "<encoded ns>/<encoded g>".
func parseGroupKey(key string) (namespace, group string, err error) {
	encNS, encGroup, ok := strings.Cut(key, objstore.DirDelim)
	if !ok || strings.Contains(encGroup, objstore.DirDelim) {
		return "", "", fmt.Errorf("object %q is not <namespace>/<group>", key)
	}
	ns, err := nameEncoding.DecodeString(encNS)
	if err != nil {
		return "", "", fmt.Errorf("object %q: namespace: %w", key, err)
	}
	g, err := nameEncoding.DecodeString(encGroup)
	if err != nil {
		return "", "", fmt.Errorf("object %q: group: %w", key, err)
	}
	if err := errors.Join(CheckName("namespace", string(ns)), CheckName("group", string(g))); err != nil {
		return "", "", fmt.Errorf("object %q: %w", key, err)
	}
	return string(ns), string(g), nil
}

// tenantBucket returns the tenant's part of the store; an invalid tenant ID makes every operation on it
// fail, so it never becomes a path.
func (s *BucketStore) tenantBucket(tenantID string) objstore.Bucket {
	return bucket.NewTenantBucket(s.bkt, tenantID)
}

// ListTenants implements Store.
func (s *BucketStore) ListTenants(ctx context.Context) ([]string, error) {
	return bucket.ListTenants(ctx, s.bkt)
}

type groupRef struct{ namespace, name string }

// groupRefs lists the tenant's groups (of one namespace, unless it is ""), sorted. Objects whose key
// does not decode are not groups of this store: they are logged and skipped, not fatal for the tenant.
func (s *BucketStore) groupRefs(ctx context.Context, bkt objstore.Bucket, tenantID, namespace string) ([]groupRef, error) {
	dir := ""
	if namespace != "" {
		dir = namespacePrefix(namespace)
	}
	var refs []groupRef
	err := bkt.Iter(ctx, dir, func(key string) error {
		ns, g, err := parseGroupKey(key)
		if err != nil {
			s.logger.Warn("skipping object that is not a rule group", "component", "ruler", "tenant", tenantID, "err", err)
			return nil
		}
		refs = append(refs, groupRef{ns, g})
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return nil, fmt.Errorf("list rule groups of tenant %s: %w", tenantID, err)
	}
	slices.SortFunc(refs, func(a, b groupRef) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return refs, nil
}

// ListRuleGroups implements Store. It reads the groups' objects loadConcurrency at a time.
func (s *BucketStore) ListRuleGroups(ctx context.Context, tenantID, namespace string) (map[string][]rulefmt.RuleGroup, error) {
	if namespace != "" {
		if err := CheckName("namespace", namespace); err != nil {
			return nil, err
		}
	}
	bkt := s.tenantBucket(tenantID)
	refs, err := s.groupRefs(ctx, bkt, tenantID, namespace)
	if err != nil {
		return nil, err
	}
	groups := make([]rulefmt.RuleGroup, len(refs))
	errs := make([]error, len(refs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(loadConcurrency, len(refs)) {
		wg.Go(func() {
			for i := range next {
				groups[i], errs[i] = s.readGroup(ctx, bkt, refs[i].namespace, refs[i].name)
			}
		})
	}
	for i := range refs {
		next <- i
	}
	close(next)
	wg.Wait()

	byNamespace := make(map[string][]rulefmt.RuleGroup)
	for i, ref := range refs {
		switch {
		case errors.Is(errs[i], ErrGroupNotFound):
			// Deleted since it was listed: the listing is still a state the store was in.
		case errs[i] != nil:
			return nil, fmt.Errorf("tenant %s: %w", tenantID, errs[i])
		default:
			byNamespace[ref.namespace] = append(byNamespace[ref.namespace], groups[i])
		}
	}
	return byNamespace, nil
}

// GetRuleGroup implements Store.
func (s *BucketStore) GetRuleGroup(ctx context.Context, tenantID, namespace, group string) (rulefmt.RuleGroup, error) {
	if err := checkNames(namespace, group); err != nil {
		return rulefmt.RuleGroup{}, err
	}
	g, err := s.readGroup(ctx, s.tenantBucket(tenantID), namespace, group)
	if err != nil {
		return rulefmt.RuleGroup{}, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	return g, nil
}

func (s *BucketStore) readGroup(ctx context.Context, bkt objstore.Bucket, namespace, group string) (rulefmt.RuleGroup, error) {
	key := groupKey(namespace, group)
	r, err := bkt.Get(ctx, key)
	if bkt.IsObjNotFoundErr(err) {
		return rulefmt.RuleGroup{}, fmt.Errorf("namespace %q, group %q: %w", namespace, group, ErrGroupNotFound)
	}
	if err != nil {
		return rulefmt.RuleGroup{}, fmt.Errorf("read rule group object %s: %w", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxObjectBytes+1))
	if err != nil {
		return rulefmt.RuleGroup{}, fmt.Errorf("read rule group object %s: %w", key, err)
	}
	if len(data) > maxObjectBytes {
		return rulefmt.RuleGroup{}, fmt.Errorf("rule group object %s is larger than %d bytes", key, maxObjectBytes)
	}
	var g rulefmt.RuleGroup
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil {
		return rulefmt.RuleGroup{}, fmt.Errorf("decode rule group object %s: %w", key, err)
	}
	if g.Name != group {
		return rulefmt.RuleGroup{}, fmt.Errorf("rule group object %s holds group %q, not %q", key, g.Name, group)
	}
	return g, nil
}

// SetRuleGroup implements Store.
func (s *BucketStore) SetRuleGroup(ctx context.Context, tenantID, namespace string, g rulefmt.RuleGroup) error {
	if err := checkNames(namespace, g.Name); err != nil {
		return err
	}
	data, err := yaml.Marshal(&g)
	if err != nil {
		return fmt.Errorf("encode rule group %q: %w", g.Name, err)
	}
	key := groupKey(namespace, g.Name)
	if err := s.tenantBucket(tenantID).Upload(ctx, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("tenant %s: write rule group object %s: %w", tenantID, key, err)
	}
	return nil
}

// DeleteRuleGroup implements Store. It checks that the group exists first: deleting a missing object
// succeeds silently on S3 but fails on other backends, and the answer must not depend on the backend.
func (s *BucketStore) DeleteRuleGroup(ctx context.Context, tenantID, namespace, group string) error {
	if err := checkNames(namespace, group); err != nil {
		return err
	}
	bkt := s.tenantBucket(tenantID)
	key := groupKey(namespace, group)
	ok, err := bkt.Exists(ctx, key)
	if err != nil {
		return fmt.Errorf("tenant %s: check rule group object %s: %w", tenantID, key, err)
	}
	if ok {
		err = bkt.Delete(ctx, key)
	}
	if !ok || bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("tenant %s, namespace %q, group %q: %w", tenantID, namespace, group, ErrGroupNotFound)
	}
	if err != nil {
		return fmt.Errorf("tenant %s: delete rule group object %s: %w", tenantID, key, err)
	}
	return nil
}

// DeleteNamespace implements Store.
func (s *BucketStore) DeleteNamespace(ctx context.Context, tenantID, namespace string) error {
	if err := CheckName("namespace", namespace); err != nil {
		return err
	}
	bkt := s.tenantBucket(tenantID)
	refs, err := s.groupRefs(ctx, bkt, tenantID, namespace)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return fmt.Errorf("tenant %s, namespace %q: %w", tenantID, namespace, ErrNamespaceNotFound)
	}
	for _, ref := range refs {
		key := groupKey(ref.namespace, ref.name)
		if err := bkt.Delete(ctx, key); err != nil && !bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("tenant %s: delete rule group object %s: %w", tenantID, key, err)
		}
	}
	return nil
}

func checkNames(namespace, group string) error {
	return errors.Join(CheckName("namespace", namespace), CheckName("group", group))
}

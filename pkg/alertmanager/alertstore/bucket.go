package alertstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/thanos-io/objstore"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/tenant"
)

const (
	configsDir   = "configs/"
	configSuffix = ".yaml"
	stateDir     = "state/"
	stateObject  = "fullstate"

	// maxConfigObjectBytes and maxStateObjectBytes bound what is read from the bucket, so a foreign or
	// corrupt object cannot take the process' memory. The config API accepts far smaller
	// configurations; state grows with silences and notifications, and stays well under this.
	maxConfigObjectBytes = 16 << 20
	maxStateObjectBytes  = 256 << 20
)

// BucketStore is the Store in an object storage bucket, with the layout of the package comment.
type BucketStore struct {
	bkt objstore.Bucket // the part of the bucket under the prefix
}

var _ Store = (*BucketStore)(nil)

// New returns the store cfg places in bkt. Closing the store's user does not close bkt, which its owner
// (the app's blocks bucket client) closes.
func New(cfg Config, bkt objstore.Bucket) (*BucketStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if bkt == nil {
		return nil, errors.New("the Alertmanager store needs a bucket")
	}
	return &BucketStore{bkt: objstore.NewPrefixedBucket(bkt, cfg.Prefix)}, nil
}

func configKey(tenantID string) (string, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return "", err
	}
	return configsDir + tenantID + configSuffix, nil
}

func stateKey(tenantID string) (string, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return "", err
	}
	return stateDir + tenantID + objstore.DirDelim + stateObject, nil
}

// ListTenants implements Store. Objects of the configs directory that are not "<valid tenant>.yaml"
// are not configurations of this store and are skipped.
func (s *BucketStore) ListTenants(ctx context.Context) ([]string, error) {
	var tenants []string
	err := s.bkt.Iter(ctx, configsDir, func(name string) error {
		base, ok := strings.CutPrefix(name, configsDir)
		if !ok {
			return nil
		}
		id, ok := strings.CutSuffix(base, configSuffix)
		if ok && tenant.ValidateID(id) == nil {
			tenants = append(tenants, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list Alertmanager configurations: %w", err)
	}
	slices.Sort(tenants)
	return tenants, nil
}

// GetConfig implements Store.
func (s *BucketStore) GetConfig(ctx context.Context, tenantID string) (AlertConfig, error) {
	key, err := configKey(tenantID)
	if err != nil {
		return AlertConfig{}, err
	}
	data, err := s.read(ctx, key, maxConfigObjectBytes)
	if err != nil {
		return AlertConfig{}, fmt.Errorf("tenant %s: Alertmanager configuration: %w", tenantID, err)
	}
	var cfg AlertConfig
	// Not strict: a configuration written by a newer version with more fields still loads.
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return AlertConfig{}, fmt.Errorf("tenant %s: decode Alertmanager configuration object %s: %w", tenantID, key, err)
	}
	return cfg, nil
}

// SetConfig implements Store.
func (s *BucketStore) SetConfig(ctx context.Context, tenantID string, cfg AlertConfig) error {
	key, err := configKey(tenantID)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(&cfg)
	if err != nil {
		return fmt.Errorf("tenant %s: encode Alertmanager configuration: %w", tenantID, err)
	}
	if err := s.bkt.Upload(ctx, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("tenant %s: write Alertmanager configuration object %s: %w", tenantID, key, err)
	}
	return nil
}

// DeleteConfig implements Store.
func (s *BucketStore) DeleteConfig(ctx context.Context, tenantID string) error {
	key, err := configKey(tenantID)
	if err != nil {
		return err
	}
	return s.delete(ctx, tenantID, key)
}

// GetState implements Store.
func (s *BucketStore) GetState(ctx context.Context, tenantID string) ([]byte, error) {
	key, err := stateKey(tenantID)
	if err != nil {
		return nil, err
	}
	data, err := s.read(ctx, key, maxStateObjectBytes)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: Alertmanager state: %w", tenantID, err)
	}
	return data, nil
}

// SetState implements Store.
func (s *BucketStore) SetState(ctx context.Context, tenantID string, state []byte) error {
	key, err := stateKey(tenantID)
	if err != nil {
		return err
	}
	if err := s.bkt.Upload(ctx, key, bytes.NewReader(state)); err != nil {
		return fmt.Errorf("tenant %s: write Alertmanager state object %s: %w", tenantID, key, err)
	}
	return nil
}

// DeleteState implements Store.
func (s *BucketStore) DeleteState(ctx context.Context, tenantID string) error {
	key, err := stateKey(tenantID)
	if err != nil {
		return err
	}
	return s.delete(ctx, tenantID, key)
}

// read returns the object's content, or an error matching ErrNotFound when there is none.
func (s *BucketStore) read(ctx context.Context, key string, limit int64) ([]byte, error) {
	r, err := s.bkt.Get(ctx, key)
	if s.bkt.IsObjNotFoundErr(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("object %s is larger than %d bytes", key, limit)
	}
	return data, nil
}

// delete removes key. A missing object is not an error: S3 deletes missing objects silently and other
// backends fail, and the answer must not depend on the backend.
func (s *BucketStore) delete(ctx context.Context, tenantID, key string) error {
	if err := s.bkt.Delete(ctx, key); err != nil && !s.bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("tenant %s: delete object %s: %w", tenantID, key, err)
	}
	return nil
}

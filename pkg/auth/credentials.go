package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// Role is what a credential may do.
type Role string

// The roles of a credential; every HTTP path needs one of them (see RequiredRole).
const (
	RoleWrite Role = "write" // push samples, OTLP, block upload
	RoleRead  Role = "read"  // queries, series and metadata, remote read, Alertmanager reads
	RoleRules Role = "rules" // rule groups and Alertmanager configurations, silences
	RoleAdmin Role = "admin" // ring pages, /ingester/*, /config, /runtime_config, /debug/pprof, deletions, /metrics
)

var knownRoles = []Role{RoleWrite, RoleRead, RoleRules, RoleAdmin}

// AllTenants in a credential's tenants lets it act as any tenant.
const AllTenants = "*"

// sha256Prefix marks a secret_hash that is the hex SHA-256 of the secret: right for long random bearer
// tokens, which bcrypt would only make slow to check (a bearer token names no credential, so an unknown
// one is checked against every bcrypt entry).
const sha256Prefix = "sha256:"

// Credential is one entry of the credentials file.
type Credential struct {
	Name       string   `yaml:"name"`
	SecretHash string   `yaml:"secret_hash"`
	Tenants    []string `yaml:"tenants"`
	Roles      []Role   `yaml:"roles"`
}

// HasRole reports whether the credential has role r.
func (c *Credential) HasRole(r Role) bool { return slices.Contains(c.Roles, r) }

// AllowsTenant reports whether the credential may act as tenant id.
func (c *Credential) AllowsTenant(id string) bool {
	return slices.Contains(c.Tenants, AllTenants) || slices.Contains(c.Tenants, id)
}

// matches checks secret against the credential's hash. bcrypt costs tens of milliseconds by design;
// the authenticator caches verified secrets so that it is paid once per secret, not per request.
func (c *Credential) matches(secret string) bool {
	if hexSum, ok := strings.CutPrefix(c.SecretHash, sha256Prefix); ok {
		sum := sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(strings.ToLower(hexSum))) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte(secret)) == nil
}

// credentialsFile is the YAML document of -auth.credentials-file.
type credentialsFile struct {
	Credentials []Credential `yaml:"credentials"`
}

// credentialSet is a loaded credentials file, indexed by name.
type credentialSet struct {
	byName map[string]*Credential
	all    []*Credential
}

// parseCredentials checks a credentials file; needSecrets is false for mtls, where a credential is
// named by a certificate and has no secret.
func parseCredentials(raw []byte, needSecrets bool) (*credentialSet, error) {
	var file credentialsFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("parse credentials: %w", err)
	}
	set := &credentialSet{byName: map[string]*Credential{}}
	for i := range file.Credentials {
		c := &file.Credentials[i]
		if err := c.validate(needSecrets); err != nil {
			return nil, fmt.Errorf("credential %d (%q): %w", i+1, c.Name, err)
		}
		if _, dup := set.byName[c.Name]; dup {
			return nil, fmt.Errorf("credential %q is listed twice", c.Name)
		}
		set.byName[c.Name] = c
		set.all = append(set.all, c)
	}
	return set, nil
}

func (c *Credential) validate(needSecrets bool) error {
	if c.Name == "" || strings.Contains(c.Name, ":") {
		return errors.New("name must be set and hold no ':' (it is the basic-auth user name)")
	}
	switch {
	case c.SecretHash == "" && needSecrets:
		return errors.New("secret_hash must be set: the bcrypt hash of the password or token (htpasswd -nbB), or sha256:<hex> of a long random token")
	case c.SecretHash == "":
	case strings.HasPrefix(c.SecretHash, sha256Prefix):
		if sum, err := hex.DecodeString(strings.TrimPrefix(c.SecretHash, sha256Prefix)); err != nil || len(sum) != sha256.Size {
			return errors.New("secret_hash sha256: must be followed by 64 hex digits")
		}
	default:
		if _, err := bcrypt.Cost([]byte(c.SecretHash)); err != nil {
			return fmt.Errorf("secret_hash is neither a bcrypt hash nor sha256:<hex>: %w", err)
		}
	}
	if len(c.Tenants) == 0 {
		return errors.New(`tenants must list at least one tenant, or "*" for all`)
	}
	for _, id := range c.Tenants {
		if id == AllTenants {
			continue
		}
		if err := tenant.ValidateID(id); err != nil {
			return fmt.Errorf("tenant %q: %w", id, err)
		}
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("roles must list at least one of %v", knownRoles)
	}
	for _, r := range c.Roles {
		if !slices.Contains(knownRoles, r) {
			return fmt.Errorf("role %q is not one of %v", r, knownRoles)
		}
	}
	return nil
}

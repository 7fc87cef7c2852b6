// Package auth decides who a request comes from, which tenants it may act as and what it may do: from
// the X-Scope-OrgID header behind a trusted proxy (the default, as in Cortex and Mimir), or from Strata's
// own credentials (basic auth, bearer tokens) or client certificates.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/runtimeconfig"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// The values of -auth.type.
const (
	TypeHeader = "header"
	TypeBasic  = "basic"
	TypeBearer = "bearer"
	TypeMTLS   = "mtls"
)

// The values of -auth.mtls-identity: which part of a client certificate names the tenant.
const (
	IdentityCommonName = "common-name"
	IdentityDNSSAN     = "dns-san"
	IdentityURISAN     = "uri-san"
	IdentityEmailSAN   = "email-san"
)

// Config configures authentication.
type Config struct {
	Type                    string
	CredentialsFile         string
	CredentialsReloadPeriod time.Duration
	MTLSIdentity            string
	CacheTTL                time.Duration
}

// RegisterFlags registers the -auth.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Type, "auth.type", TypeHeader, "How a request's tenant is decided. header: trust X-Scope-OrgID (behind a proxy that authenticates). basic or bearer: HTTP basic auth or a bearer token checked against -auth.credentials-file, which gives the tenants and roles. mtls: the verified client certificate names the tenant (see -auth.mtls-identity).")
	f.StringVar(&c.CredentialsFile, "auth.credentials-file", "", "YAML file of credentials (credentials: [{name, secret_hash, tenants, roles}]), re-read while Strata runs. Required by basic and bearer; with mtls it gives certificates other tenants and roles than their own; with header it makes the admin endpoints require an admin credential.")
	f.DurationVar(&c.CredentialsReloadPeriod, "auth.credentials-reload-period", 10*time.Second, "How often the credentials file is re-read; a file that does not parse keeps the previous credentials.")
	f.StringVar(&c.MTLSIdentity, "auth.mtls-identity", IdentityCommonName, "With -auth.type=mtls, the part of the client certificate that is the tenant: common-name, dns-san, uri-san or email-san (the first of that kind).")
	f.DurationVar(&c.CacheTTL, "auth.cache-ttl", time.Minute, "How long a verified secret is remembered, so bcrypt is not paid per request. A credential removed from the file stops working at the next reload, whatever this is.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeHeader, TypeMTLS:
	case TypeBasic, TypeBearer:
		if c.CredentialsFile == "" {
			return fmt.Errorf("-auth.type=%s needs -auth.credentials-file", c.Type)
		}
	default:
		return fmt.Errorf("-auth.type: %q is not one of header, basic, bearer, mtls", c.Type)
	}
	switch c.MTLSIdentity {
	case IdentityCommonName, IdentityDNSSAN, IdentityURISAN, IdentityEmailSAN:
	default:
		return fmt.Errorf("-auth.mtls-identity: %q is not one of common-name, dns-san, uri-san, email-san", c.MTLSIdentity)
	}
	if c.CredentialsFile != "" && c.CredentialsReloadPeriod <= 0 {
		return errors.New("-auth.credentials-reload-period must be positive")
	}
	if c.CacheTTL < 0 {
		return errors.New("-auth.cache-ttl must not be negative")
	}
	return nil
}

// TrustsHeader reports whether the tenant header is taken as it comes (the header type).
func (c *Config) TrustsHeader() bool { return c.Type == TypeHeader }

// Authenticator checks every HTTP request before the router sees it.
type Authenticator struct {
	cfg    Config
	logger *slog.Logger
	creds  *runtimeconfig.Manager[credentialSet] // nil without a credentials file

	cacheMu sync.Mutex
	cache   map[[sha256.Size]byte]cacheEntry
	// verifySlots bounds the CPU that bcrypt checks may take: a flood of wrong passwords, each unknown to
	// the cache, would otherwise keep every core busy hashing.
	verifySlots chan struct{}

	failures     *prometheus.CounterVec
	secretChecks prometheus.Counter
	logLimiter   *rate.Limiter
}

type cacheEntry struct {
	set     *credentialSet // the credentials the secret was checked against; a reload makes the entry stale
	cred    *Credential    // nil: the secret matched none
	expires time.Time
}

// maxCacheEntries bounds the cache of verified secrets; failed ones are cached too, so a client retrying a
// wrong password costs one bcrypt per TTL, not one per request.
const maxCacheEntries = 10_000

// New returns an authenticator; Start loads the credentials file.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) *Authenticator {
	a := &Authenticator{
		cfg:         cfg,
		logger:      logger,
		cache:       map[[sha256.Size]byte]cacheEntry{},
		verifySlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		failures: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_auth_failures_total",
			Help: "Requests refused by authentication: missing (no credential, 401), invalid (unknown or wrong, 401), role (403), tenant (403).",
		}, []string{"reason"}),
		secretChecks: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_auth_secret_checks_total",
			Help: "Secrets compared with a credential's hash (bcrypt costs tens of milliseconds each); cached answers, right or wrong, are not counted.",
		}),
		logLimiter: rate.NewLimiter(rate.Every(time.Second), 10),
	}
	if cfg.CredentialsFile != "" {
		needSecrets := cfg.Type != TypeMTLS
		a.creds = runtimeconfig.NewFile(runtimeconfig.Config{File: cfg.CredentialsFile, ReloadPeriod: cfg.CredentialsReloadPeriod},
			"credentials", "strata_auth_credentials", func(raw []byte) (*credentialSet, error) { return parseCredentials(raw, needSecrets) }, reg, logger)
	}
	return a
}

// Start loads the credentials file (an unreadable file fails the start) and re-reads it until Stop.
func (a *Authenticator) Start(ctx context.Context) error {
	if a.creds == nil {
		return nil
	}
	return a.creds.Start(ctx)
}

// Stop ends the reloads.
func (a *Authenticator) Stop(ctx context.Context) error {
	if a.creds == nil {
		return nil
	}
	return a.creds.Stop(ctx)
}

// refusal is why a request is refused; its message is all the client learns.
type refusal struct {
	code   int
	reason string // the failures metric's label
	msg    string
}

func (r *refusal) Error() string { return r.msg }

var (
	errMissing    = &refusal{http.StatusUnauthorized, "missing", "authentication required"}
	errInvalid    = &refusal{http.StatusUnauthorized, "invalid", "invalid credentials"}
	errOverloaded = &refusal{http.StatusServiceUnavailable, "overloaded", "too many credentials being checked, retry later"}
)

// Middleware authenticates each request, checks its role for the path, and sets X-Scope-OrgID to the
// tenant it acts as, so the handlers behind it read the tenant as they always do.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	if a.cfg.Type == TypeHeader && a.creds == nil {
		return next // the proxy in front decides
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := RequiredRole(r.Method, r.URL.Path)
		if role == rolePublic || (a.cfg.Type == TypeHeader && role != RoleAdmin) {
			next.ServeHTTP(w, r)
			return
		}
		if err := a.authorize(r, role); err != nil {
			var ref *refusal
			if !errors.As(err, &ref) {
				ref = &refusal{http.StatusInternalServerError, "error", "authentication failed"}
			}
			a.refuse(w, r, ref, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorize finds the request's credential, checks that it has role, and settles the tenant header.
func (a *Authenticator) authorize(r *http.Request, role Role) error {
	cred, err := a.credentialOf(r)
	if err != nil {
		return err
	}
	if !cred.HasRole(role) {
		return &refusal{http.StatusForbidden, "role", fmt.Sprintf("credential %q does not have the %s role this endpoint needs", cred.Name, role)}
	}
	values := r.Header.Values(tenant.OrgIDHeader)
	switch len(values) {
	case 0:
		// A credential of one tenant acts as it; others must say which (handlers that need a tenant
		// answer 401 asking for the header).
		if len(cred.Tenants) == 1 && cred.Tenants[0] != AllTenants {
			r.Header.Set(tenant.OrgIDHeader, cred.Tenants[0])
		}
	case 1:
		// The header narrows the credential to some of its tenants ("a|b" for a federated read).
		for _, id := range strings.Split(values[0], tenant.FederationSeparator) {
			if !cred.AllowsTenant(id) {
				return &refusal{http.StatusForbidden, "tenant", fmt.Sprintf("credential %q may not act as tenant %q", cred.Name, id)}
			}
		}
	default:
		return &refusal{http.StatusBadRequest, "tenant", fmt.Sprintf("the %s header is set %d times, send it once", tenant.OrgIDHeader, len(values))}
	}
	return nil
}

// credentialOf returns the credential the request presents.
func (a *Authenticator) credentialOf(r *http.Request) (*Credential, error) {
	if a.cfg.Type == TypeMTLS {
		return a.certificateCredential(r)
	}
	var set *credentialSet
	if a.creds != nil {
		set = a.creds.Current()
	}
	if set == nil {
		return nil, errInvalid
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil, errMissing
	}
	if name, secret, ok := r.BasicAuth(); ok && a.cfg.Type != TypeBearer {
		c, found := set.byName[name]
		if !found {
			return nil, errInvalid
		}
		return a.verify(r.Context(), set, "basic\x00"+name+"\x00"+secret, secret, []*Credential{c})
	}
	scheme, token, ok := strings.Cut(authz, " ")
	if ok && strings.EqualFold(scheme, "Bearer") && token != "" && a.cfg.Type != TypeBasic {
		return a.verify(r.Context(), set, "bearer\x00"+token, token, set.all)
	}
	return nil, errInvalid
}

// verify returns the first of candidates whose secret hash matches secret, through the cache.
func (a *Authenticator) verify(ctx context.Context, set *credentialSet, cacheKey, secret string, candidates []*Credential) (*Credential, error) {
	key := sha256.Sum256([]byte(cacheKey))
	now := time.Now()
	a.cacheMu.Lock()
	e, ok := a.cache[key]
	a.cacheMu.Unlock()
	if ok && e.set == set && now.Before(e.expires) {
		if e.cred == nil {
			return nil, errInvalid
		}
		return e.cred, nil
	}

	select {
	case a.verifySlots <- struct{}{}:
	case <-ctx.Done():
		return nil, errOverloaded
	case <-time.After(5 * time.Second):
		return nil, errOverloaded
	}
	var match *Credential
	for _, c := range candidates {
		a.secretChecks.Inc()
		if c.SecretHash != "" && c.matches(secret) {
			match = c
			break
		}
	}
	<-a.verifySlots

	if a.cfg.CacheTTL > 0 {
		a.cacheMu.Lock()
		if len(a.cache) >= maxCacheEntries {
			for k, old := range a.cache {
				if old.set != set || now.After(old.expires) {
					delete(a.cache, k)
				}
			}
			if len(a.cache) >= maxCacheEntries {
				clear(a.cache)
			}
		}
		a.cache[key] = cacheEntry{set: set, cred: match, expires: now.Add(a.cfg.CacheTTL)}
		a.cacheMu.Unlock()
	}
	if match == nil {
		return nil, errInvalid
	}
	return match, nil
}

// certificateCredential names the request's credential by its verified client certificate: the
// credentials file's entry of that name if there is one, else the tenant of that name with every role
// but admin.
func (a *Authenticator) certificateCredential(r *http.Request) (*Credential, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, errMissing
	}
	id := a.certificateIdentity(r.TLS.VerifiedChains[0][0])
	if id == "" {
		return nil, errInvalid
	}
	if a.creds != nil {
		if set := a.creds.Current(); set != nil {
			if c, ok := set.byName[id]; ok {
				return c, nil
			}
		}
	}
	if tenant.ValidateID(id) != nil {
		return nil, errInvalid
	}
	return &Credential{Name: id, Tenants: []string{id}, Roles: []Role{RoleWrite, RoleRead, RoleRules}}, nil
}

func (a *Authenticator) certificateIdentity(cert *x509.Certificate) string {
	switch a.cfg.MTLSIdentity {
	case IdentityDNSSAN:
		if len(cert.DNSNames) > 0 {
			return cert.DNSNames[0]
		}
	case IdentityURISAN:
		if len(cert.URIs) > 0 {
			return cert.URIs[0].String()
		}
	case IdentityEmailSAN:
		if len(cert.EmailAddresses) > 0 {
			return cert.EmailAddresses[0]
		}
	default:
		return cert.Subject.CommonName
	}
	return ""
}

// refuse answers a refused request with nothing more than its status and a short message, counts it and
// logs it (at most a few lines a second, so a flood of bad requests cannot flood the log).
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, ref *refusal, err error) {
	a.failures.WithLabelValues(ref.reason).Inc()
	if a.logLimiter.Allow() {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a.logger.Warn("request refused by authentication", "reason", ref.reason, "remote", host, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ref.code == http.StatusUnauthorized {
		switch a.cfg.Type {
		case TypeBasic:
			w.Header().Set("WWW-Authenticate", `Basic realm="strata"`)
		case TypeBearer:
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
		case TypeHeader:
			w.Header().Set("WWW-Authenticate", `Basic realm="strata admin"`)
		}
	}
	http.Error(w, ref.msg, ref.code)
}

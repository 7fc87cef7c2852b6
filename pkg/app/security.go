package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/strata-metrics/strata/pkg/auth"
)

// validateAuth checks what an authentication type other than header needs from the rest of the
// configuration.
func (c *Config) validateAuth() error {
	if c.Auth.TrustsHeader() {
		return nil
	}
	if !c.MultitenancyEnabled {
		return fmt.Errorf("-auth.type=%s needs -auth.multitenancy-enabled=true: credentials name the tenants a request may act as", c.Auth.Type)
	}
	if c.Auth.Type == auth.TypeMTLS {
		if t := c.Server.HTTPTLS.ClientAuthType(); !c.Server.HTTPTLS.Enabled() || (t != tls.RequireAndVerifyClientCert && t != tls.VerifyClientCertIfGiven) {
			return fmt.Errorf("-auth.type=mtls needs the HTTP server to verify client certificates: -server.http-tls-cert-path, -server.http-tls-key-path and -server.http-tls-ca-path (-server.http-tls-client-auth=VerifyClientCertIfGiven lets probes without a certificate reach /ready)")
		}
	}
	// Components trust the tenant that gRPC callers put in their metadata: only callers that proved they
	// are part of the cluster may make those calls.
	if c.Server.GRPCTLS.ClientAuthType() != tls.RequireAndVerifyClientCert && !isLoopback(c.Server.GRPCListenAddress) {
		return fmt.Errorf("-auth.type=%s: the gRPC port trusts the tenant its callers name, so it must require client certificates (-server.grpc-tls-cert-path, -server.grpc-tls-key-path, -server.grpc-tls-ca-path) or listen on a loopback address only (-server.grpc-listen-address=127.0.0.1, for a single process)", c.Auth.Type)
	}
	return nil
}

// validateInternalTLS checks that a process whose own components reach each other over its gRPC port
// can do so when that port serves TLS: the querier's worker pulls queries from the query-frontend of
// the same process through it.
func (c *Config) validateInternalTLS(targets []string) error {
	if !c.Server.GRPCTLS.Enabled() || c.QuerierWorker.Client.TLS.Enabled || c.QuerierWorker.FrontendAddress != "" {
		return nil
	}
	if slices.Contains(targets, TargetAll) || (slices.Contains(targets, TargetQuerier) && slices.Contains(targets, TargetFrontend)) {
		return errors.New("the querier reaches this process' query-frontend through its gRPC port, which serves TLS: set -querier.frontend-client.tls-enabled with -querier.frontend-client.tls-ca-path (and -tls-cert-path, -tls-key-path when the port requires client certificates)")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

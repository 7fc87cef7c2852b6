package app

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateAuthAndInternalTLS(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-auth.type=basic"}, "needs -auth.credentials-file"},
		{[]string{"-auth.type=basic", "-auth.credentials-file=c.yaml"}, "gRPC port trusts the tenant"},
		{[]string{"-auth.type=basic", "-auth.credentials-file=c.yaml", "-server.grpc-listen-address=127.0.0.1", "-auth.multitenancy-enabled=false"}, "needs -auth.multitenancy-enabled=true"},
		{[]string{"-auth.type=mtls", "-server.grpc-listen-address=127.0.0.1"}, "verify client certificates"},
		{[]string{"-auth.type=mtls", "-server.grpc-listen-address=127.0.0.1", "-server.http-tls-cert-path=c", "-server.http-tls-key-path=k", "-server.http-tls-ca-path=ca", "-server.http-tls-client-auth=RequestClientCert"}, "verify client certificates"},
		{[]string{"-auth.type=magic"}, "not one of header, basic, bearer, mtls"},
		{[]string{"-server.grpc-tls-cert-path=c", "-server.grpc-tls-key-path=k"}, "-querier.frontend-client.tls-enabled"},
		{[]string{"-target=querier,query-frontend", "-server.grpc-tls-cert-path=c", "-server.grpc-tls-key-path=k"}, "-querier.frontend-client.tls-enabled"},
	} {
		_, _, err := LoadConfig(tc.args, io.Discard)
		require.ErrorContains(t, err, tc.err, tc.args)
	}
	for _, ok := range [][]string{
		{"-auth.type=basic", "-auth.credentials-file=c.yaml", "-server.grpc-listen-address=127.0.0.1"},
		{"-auth.type=bearer", "-auth.credentials-file=c.yaml", "-server.grpc-tls-cert-path=c", "-server.grpc-tls-key-path=k", "-server.grpc-tls-ca-path=ca", "-querier.frontend-client.tls-enabled", "-querier.frontend-client.tls-ca-path=ca"},
		{"-auth.type=mtls", "-server.grpc-listen-address=localhost", "-server.http-tls-cert-path=c", "-server.http-tls-key-path=k", "-server.http-tls-ca-path=ca"},
		{"-target=ingester", "-server.grpc-tls-cert-path=c", "-server.grpc-tls-key-path=k"},
		{"-server.grpc-tls-cert-path=c", "-server.grpc-tls-key-path=k", "-querier.frontend-client.tls-enabled", "-querier.frontend-client.tls-ca-path=ca"},
	} {
		_, _, err := LoadConfig(ok, io.Discard)
		require.NoError(t, err, ok)
	}
}

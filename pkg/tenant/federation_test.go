package tenant

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFederatedID(t *testing.T) {
	id, err := ParseFederatedID("team-b|team-a|team-b")
	require.NoError(t, err)
	require.Equal(t, "team-a|team-b", id, "sorted, each once: one queue and one cache entry whatever the order")
	require.Equal(t, []string{"team-a", "team-b"}, IDs(id))
	require.Equal(t, []string{"solo"}, IDs("solo"))

	for _, bad := range []string{"a||b", "a|", "|a", "a|..", "a|b c", "a|" + strings.Repeat("x", MaxIDLength+1)} {
		_, err := ParseFederatedID(bad)
		require.Error(t, err, bad)
	}
	_, err = ParseFederatedID(strings.Repeat("t|", MaxFederatedTenants) + "t")
	require.ErrorContains(t, err, "at most 100")
}

func TestFederatedFromHTTPRequest(t *testing.T) {
	req := func(v string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(OrgIDHeader, v)
		return r
	}
	id, err := FederatedFromHTTPRequest(req("b|a"), true)
	require.NoError(t, err)
	require.Equal(t, "a|b", id)
	id, err = FederatedFromHTTPRequest(req("a"), true)
	require.NoError(t, err)
	require.Equal(t, "a", id)
	id, err = FederatedFromHTTPRequest(req("a|b"), false)
	require.NoError(t, err)
	require.Equal(t, AnonymousTenant, id, "without multitenancy the header is ignored")
	_, err = FromHTTPRequest(req("a|b"), true)
	require.ErrorIs(t, err, ErrUnsupportedCharacter, "a write names one tenant")
}

package inprocess

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecorder(t *testing.T) {
	rec := NewRecorder(8)
	rec.Header().Set("Content-Type", "text/plain")
	rec.WriteHeader(http.StatusTeapot)
	rec.WriteHeader(http.StatusOK) // as on a connection, too late
	n, err := rec.Write([]byte("12345"))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	_, err = rec.Write([]byte("6789"))
	require.ErrorContains(t, err, "larger than 8 bytes")
	require.True(t, rec.TooLarge)

	resp := rec.Response(nil)
	require.Equal(t, http.StatusTeapot, resp.StatusCode)
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "12345", string(body))

	require.Equal(t, http.StatusOK, NewRecorder(0).Status(), "nothing written is a 200")
}

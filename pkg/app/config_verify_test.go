package app

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVerifyRequested_ReadsTheFlagAloneWhateverElseIsWrong(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-config.verify"}, true},
		{[]string{"--config.verify=true"}, true},
		{[]string{"-config.verify=false"}, false},
		{[]string{"-no-such-flag", "-config.verify", "-target=bad"}, true},
		{[]string{"-config.file", "x.yaml", "-config.verify"}, true},
		{[]string{"-config.verify=maybe"}, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, VerifyRequested(tt.args), "%q", tt.args)
	}
}

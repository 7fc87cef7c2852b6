package tenant_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr error  // sentinel, nil when the ID is valid
		wantMsg string // substring of the message
	}{
		{name: "letters", id: "team"},
		{name: "mixed case and digits", id: "Team42"},
		{name: "digits only", id: "0"},
		{name: "all allowed specials", id: "a!b-c_d.e*f'g(h)i"},
		{name: "exclamation", id: "!"},
		{name: "hyphen", id: "-"},
		{name: "underscore", id: "_"},
		{name: "dot inside", id: "a.b"},
		{name: "asterisk", id: "*"},
		{name: "single quote", id: "'"},
		{name: "open paren", id: "("},
		{name: "close paren", id: ")"},
		{name: "three dots", id: "..."},
		{name: "dot prefix", id: ".a"},
		{name: "exactly 150 bytes", id: strings.Repeat("a", 150)},

		{name: "empty", id: "", wantErr: tenant.ErrEmptyID, wantMsg: "tenant ID is empty"},
		{name: "151 bytes", id: strings.Repeat("a", 151), wantErr: tenant.ErrIDTooLong,
			wantMsg: "tenant ID is 151 bytes, at most 150 are allowed"},
		{name: "very long with bad characters reports length", id: strings.Repeat("/", 1000), wantErr: tenant.ErrIDTooLong,
			wantMsg: "tenant ID is 1000 bytes"},
		{name: "dot", id: ".", wantErr: tenant.ErrReservedID, wantMsg: `tenant ID "." is not allowed`},
		{name: "dot dot", id: "..", wantErr: tenant.ErrReservedID, wantMsg: `tenant ID ".." is not allowed`},
		{name: "rule groups' directory", id: "rules", wantErr: tenant.ErrReservedID, wantMsg: "reserved for Strata's own objects"},
		{name: "alertmanager's directory", id: "alertmanager", wantErr: tenant.ErrReservedID, wantMsg: "reserved for Strata's own objects"},
		{name: "slash", id: "/", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "tenant ID contains unsupported character '/' at byte 0"},
		{name: "slash inside", id: "a/b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "unsupported character '/' at byte 1"},
		{name: "dot dot slash", id: "../x", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'/'"},
		{name: "backslash", id: `a\b`, wantErr: tenant.ErrUnsupportedCharacter, wantMsg: `'\\'`},
		{name: "space", id: "a b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "' '"},
		{name: "leading space", id: " a", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "' ' at byte 0"},
		{name: "tab", id: "a\tb", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: `'\t'`},
		{name: "NUL", id: "a\x00", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: `'\x00'`},
		{name: "pipe (federation separator)", id: "a|b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'|'"},
		{name: "colon", id: "a:b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "':'"},
		{name: "plus is not in a range", id: "a+b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'+'"},
		{name: "comma is not in a range", id: "a,b", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "','"},
		{name: "slash is not in a range", id: "a/", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'/'"},
		{name: "double quote", id: `a"b`, wantErr: tenant.ErrUnsupportedCharacter, wantMsg: `'"'`},
		{name: "unicode letter", id: "tëam", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'ë' at byte 1"},
		{name: "emoji", id: "🙂", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: "'🙂'"},
		{name: "invalid UTF-8", id: "a\xff", wantErr: tenant.ErrUnsupportedCharacter, wantMsg: `'\xff' (not valid UTF-8)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tenant.ValidateID(tc.id)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			var invalid *tenant.InvalidIDError
			require.ErrorAs(t, err, &invalid)
			require.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

// legacyIDPattern is an independent statement of the rules, to check ValidateID against.
var legacyIDPattern = regexp.MustCompile(`^[a-zA-Z0-9!\-_.*'()]{1,150}$`)

func FuzzValidateID(f *testing.F) {
	for _, seed := range []string{"", "a", ".", "..", "...", "a/b", "tëam", "a\xff", strings.Repeat("x", 150),
		strings.Repeat("x", 151), "!-_.*'()", " ", "a b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := tenant.ValidateID(id)
		want := legacyIDPattern.MatchString(id) && id != "." && id != ".." && !slices.Contains(tenant.ReservedIDs, id)
		if want {
			require.NoError(t, err)
			return
		}
		require.Error(t, err, "ValidateID accepted %q", id)
		var invalid *tenant.InvalidIDError
		require.ErrorAs(t, err, &invalid)
		require.True(t, errors.Is(err, tenant.ErrEmptyID) || errors.Is(err, tenant.ErrIDTooLong) ||
			errors.Is(err, tenant.ErrReservedID) || errors.Is(err, tenant.ErrUnsupportedCharacter))
	})
}

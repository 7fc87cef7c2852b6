package tenant

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxIDLength is the longest tenant ID, in bytes. Tenant IDs become object-storage path segments and
// metric label values, so they are kept short.
const MaxIDLength = 150

// AnonymousTenant is the tenant of every request when multitenancy is disabled.
const AnonymousTenant = "anonymous"

// ReservedIDs are the bucket's top-level directories that are not tenants: the rule groups of the
// ruler and the configurations and state of the Alertmanager. No tenant may have these IDs, so that
// listing the tenants of a bucket never mistakes them for one.
var ReservedIDs = []string{"rules", "alertmanager"}

// Sentinel errors for each rule a tenant ID can break. Errors from ValidateID are *InvalidIDError values
// that wrap one of these, so errors.Is tells the rule and errors.As tells that the ID was invalid.
var (
	ErrEmptyID              = errors.New("tenant ID is empty")
	ErrIDTooLong            = errors.New("tenant ID is too long")
	ErrReservedID           = errors.New("tenant ID is reserved")
	ErrUnsupportedCharacter = errors.New("tenant ID contains an unsupported character")
)

// InvalidIDError reports why a tenant ID was rejected. Its message is meant for the client that sent the
// ID; Unwrap returns the sentinel of the rule that was broken.
type InvalidIDError struct {
	rule error
	msg  string
}

func (e *InvalidIDError) Error() string { return e.msg }

// Unwrap returns the sentinel error of the broken rule (ErrEmptyID, ErrIDTooLong, ...).
func (e *InvalidIDError) Unwrap() error { return e.rule }

// allowedIDBytes marks the bytes a tenant ID may contain. Every allowed character is ASCII, so a byte
// lookup is enough and a multi-byte UTF-8 sequence is rejected at its first byte.
var allowedIDBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!-_.*'()") {
		t[c] = true
	}
	return t
}()

// ValidateID checks that id is a usable tenant ID: 1 to MaxIDLength bytes of ASCII letters, digits and
// the characters ! - _ . * ' ( ), neither "." nor ".." (which would be relative path segments in
// object storage) nor one of ReservedIDs. The error is an *InvalidIDError that says which rule was broken.
func ValidateID(id string) error {
	switch {
	case id == "":
		return &InvalidIDError{rule: ErrEmptyID, msg: ErrEmptyID.Error()}
	case len(id) > MaxIDLength:
		return &InvalidIDError{
			rule: ErrIDTooLong,
			msg:  fmt.Sprintf("tenant ID is %d bytes, at most %d are allowed", len(id), MaxIDLength),
		}
	case id == "." || id == "..":
		return &InvalidIDError{
			rule: ErrReservedID,
			msg:  fmt.Sprintf(`tenant ID %q is not allowed: "." and ".." are relative path segments in object storage`, id),
		}
	case slices.Contains(ReservedIDs, id):
		return &InvalidIDError{
			rule: ErrReservedID,
			msg:  fmt.Sprintf(`tenant ID %q is not allowed: it is reserved for Strata's own objects in the bucket`, id),
		}
	}
	for i := 0; i < len(id); i++ {
		if !allowedIDBytes[id[i]] {
			return &InvalidIDError{
				rule: ErrUnsupportedCharacter,
				msg: fmt.Sprintf("tenant ID contains unsupported character %s at byte %d; "+
					"allowed are letters, digits and ! - _ . * ' ( )", quoteCharAt(id, i), i),
			}
		}
	}
	return nil
}

// quoteCharAt renders the character starting at byte i of s, or the single byte when it does not start
// valid UTF-8, so the message shows what the client actually sent.
func quoteCharAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf(`'\x%02x' (not valid UTF-8)`, s[i])
	}
	return strconv.QuoteRune(r)
}

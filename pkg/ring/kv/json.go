package kv

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// EncodeJSON is a Codec's Encode for values of type T stored as JSON (readable with etcdctl and on the
// memberlist page); codec names the codec in errors.
func EncodeJSON[T any](codec string, v any) ([]byte, error) {
	t, ok := v.(T)
	if !ok {
		return nil, fmt.Errorf("%s: cannot encode %T, want %s", codec, v, shortTypeName(reflect.TypeFor[T]()))
	}
	return json.Marshal(t)
}

// DecodeJSON is a Codec's Decode for values stored as JSON: it decodes b into into; what says what b
// holds, for errors.
func DecodeJSON[T any](codec, what string, b []byte, into T) (T, error) {
	if err := json.Unmarshal(b, into); err != nil {
		var zero T
		return zero, fmt.Errorf("%s: decode %s: %w", codec, what, err)
	}
	return into, nil
}

// shortTypeName is t's name without its package, e.g. *Desc.
func shortTypeName(t reflect.Type) string {
	s := t.String()
	star := strings.LastIndex(s, "*") + 1
	return s[:star] + s[strings.LastIndex(s, ".")+1:]
}

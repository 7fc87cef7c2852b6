// Package flagext holds flag value types shared by components' configs.
package flagext

// Secret is a string flag whose value /config masks (passwords, keys).
type Secret struct {
	Value string
}

// String implements flag.Value.
func (s *Secret) String() string { return s.Value }

// Set implements flag.Value.
func (s *Secret) Set(v string) error {
	s.Value = v
	return nil
}

// IsSecret marks the value as one that must not be shown.
func (s *Secret) IsSecret() bool { return true }

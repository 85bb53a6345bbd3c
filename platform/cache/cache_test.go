package cache

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeyPartsCannotShiftABoundary: parts containing ':' (or '%', the
// escape character) never make two different lists of parts one key.
func TestKeyPartsCannotShiftABoundary(t *testing.T) {
	t.Parallel()
	r := &Redis{Prefix: "test:"}
	require.Equal(t, "test:eot:v2:picker_phone:N:1", r.Key("eot", "v2", "picker_phone", "N", "1"))
	require.Equal(t, "test:N%3A1:2", r.Key("N:1", "2"))
	require.Equal(t, "test:N:1%3A2", r.Key("N", "1:2"))
	require.Equal(t, "test:a%253A:b", r.Key("a%3A", "b"), "an escape in the input is escaped itself")

	lists := [][]string{
		{"N:1", "2"}, {"N", "1:2"}, {"N", "1", "2"}, {"N:1:2"}, {"N%3A1", "2"}, {"N", "1%3A2"},
		{"", "N:1:2"}, {"N:1:2", ""}, {"N:", "1:2"}, {"N%", "3A1:2"}, {"N%253A1", "2"},
	}
	seen := map[string][]string{}
	for _, parts := range lists {
		k := r.Key(parts...)
		prev, dup := seen[k]
		require.False(t, dup, "%q and %q both give %q", prev, parts, k)
		seen[k] = parts
	}
}

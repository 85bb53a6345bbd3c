//go:build system

package systest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindPhonesInLogs proves the log check finds a phone however a line
// writes it, and leaves masked ones alone.
func TestFindPhonesInLogs(t *testing.T) {
	t.Parallel()
	phones := map[string]string{"79991234567": "+7 999 123-45-67"}
	log := strings.Join([]string{
		`{"msg":"ok","phone":"+*******4567"}`,
		`{"msg":"leak","phone":"+79991234567"}`,
		`{"msg":"leak","phone":"+7 999 123-45-67"}`,
		`{"msg":"leak","phone":"+7 (999) 123 45 67,,12"}`,
		`{"msg":"leak","err":"invalid phone (got \"８９９９１２３４５６７\")"}`,
		`{"msg":"leak","err":"got 00079991234567000"}`,
		`{"msg":"ok","n":7999123456}`,
	}, "\n")
	phones["89991234567"] = "８９９９１２３４５６７"
	leaks, lines, err := findPhones(strings.NewReader(log), phones)
	require.NoError(t, err)
	require.Equal(t, 7, lines)
	var found []int
	for _, l := range leaks {
		found = append(found, l.line)
	}
	require.Equal(t, []int{2, 3, 4, 5, 6}, found)
}

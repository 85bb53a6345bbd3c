package orderingest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// An identifier too long for an index would fail the upsert on every retry;
// it must be refused up front so the job is cancelled, not retried forever.
func TestOverlongIdentifiersAreInvalid(t *testing.T) {
	t.Parallel()
	for _, field := range []string{"order_nr", "eater_id"} {
		raw := `{"order_nr":"o1","eater_id":"e1","flow_type":"native","status":"created",` +
			`"place":{"id":"40","name":"P"},"created_at":"2026-01-01T00:00:00Z"}`
		raw = strings.Replace(raw, `"`+field+`":"`, `"`+field+`":"`+strings.Repeat("x", 20_000), 1)
		var a OrderArgs
		require.NoError(t, json.Unmarshal([]byte(raw), &a))
		_, err := a.snapshot()
		require.ErrorContains(t, err, "invalid "+field+": longer than 256 bytes", field)
	}
}

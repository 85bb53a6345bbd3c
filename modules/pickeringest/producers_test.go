package pickeringest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// codeBlocks returns the fenced code blocks of a markdown file by language.
func codeBlocks(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	blocks := map[string][]string{}
	var lang string
	var cur []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, lang, cur = true, strings.TrimPrefix(line, "```"), nil
		case in && line == "```":
			in = false
			blocks[lang] = append(blocks[lang], strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "unterminated code block in %s", path)
	return blocks
}

// goExample is the code between the markers of producer_example_test.go.
func goExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("producer_example_test.go")
	require.NoError(t, err)
	s := string(b)
	const begin, end = "// producers.md:begin\n", "// producers.md:end\n"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	require.True(t, i >= 0 && j > i, "markers missing")
	return strings.Trim(s[i+len(begin):j], "\n") + "\n"
}

// TestProducersGuide runs every example of docs/producers.md against a
// running service: the Go code (which must be the doc's Go block, verbatim),
// the SQL block as written, and the curl command through a shell.
func TestProducersGuide(t *testing.T) {
	t.Parallel()
	blocks := codeBlocks(t, filepath.Join(pgtest.RepoRoot(), "docs", "producers.md"))
	require.Len(t, blocks["go"], 1)
	require.Len(t, blocks["sql"], 1)
	require.Len(t, blocks["sh"], 1)
	require.Equal(t, goExample(t), blocks["go"][0], "docs/producers.md's Go block must equal the code in producer_example_test.go")

	s := start(t, nil)
	ctx := context.Background()

	t.Run("go", func(t *testing.T) {
		client, err := newProducerClient(s.DB.DB)
		require.NoError(t, err)
		require.NoError(t, publishPickerStatus(ctx, s.DB.DB, client, "230101-100001", "picking", "picker-7"))
		var p string
		pgtest.Eventually(t, 10*time.Second, func() (ok bool) {
			p, ok = s.payload(t, "230101-100001")
			return ok
		}, "the Go producer's event applied")
		var got struct {
			Status   string `json:"status"`
			PickerID string `json:"picker_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(p), &got))
		require.Equal(t, "picking", got.Status)
		require.Equal(t, "picker-7", got.PickerID)
	})

	t.Run("sql", func(t *testing.T) {
		_, err := s.DB.ExecContext(ctx, blocks["sql"][0])
		require.NoError(t, err)
		var p string
		pgtest.Eventually(t, 10*time.Second, func() (ok bool) {
			p, ok = s.payload(t, "230101-100002")
			return ok
		}, "the SQL producer's event applied")
		require.JSONEq(t, `{"status":"assigned","picker_id":"picker-7","status_history":{"assigned_at":"2025-01-01T10:00:00Z"}}`, p)
	})

	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Fatal("curl is needed to run the HTTP example of docs/producers.md")
		}
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", blocks["sh"][0])
		cmd.Env = append(os.Environ(), "EOT_URL="+s.URL, "INTERNAL_API_TOKEN="+apptest.Token)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		var res struct {
			JobID int64 `json:"job_id"`
		}
		require.NoError(t, json.Unmarshal(out, &res), string(out))
		require.Positive(t, res.JobID)
		require.Equal(t, "completed", s.waitJob(t, res.JobID).State)
		var phone string
		require.NoError(t, s.DB.Get(&phone, `SELECT phone FROM picker_phones WHERE order_nr = '230101-100003' AND picker_id = 'picker-7'`))
		require.Equal(t, "+79991234567,,123", phone)
	})
}

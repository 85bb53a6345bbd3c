package benchdoc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A run replaces only its own section, and the run it replaces is kept,
// newest first, under "### Earlier runs"; a section not there yet is
// appended.
func TestReplaceKeepsEarlierRuns(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	require.NoError(t, os.WriteFile(path, []byte("# Benchmarks\n\n## bench:a\n\na\n\n## bench:s\n\nRun 1: one\n\n### Setup\n\nx\n\n## bench:c\n\nc\n"), 0o600))
	require.NoError(t, WriteSection(path, "## bench:s", "## bench:s\n\nRun 2: two\n"))
	require.NoError(t, WriteSection(path, "## bench:s", "## bench:s\n\nRun 3: three\n"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n## bench:a\n\na\n\n"+
		"## bench:s\n\nRun 3: three\n\n### Earlier runs\n\n"+
		"#### Run 2\n\nRun 2: two\n\n"+
		"#### Run 1\n\nRun 1: one\n\n##### Setup\n\nx\n\n"+
		"## bench:c\n\nc\n", string(b))

	require.NoError(t, WriteSection(path, "## bench:d", "## bench:d\n\nd\n"))
	require.NoError(t, WriteSection(path, "## bench:d", "## bench:d\n\ne\n"))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), "## bench:c\n\nc\n\n## bench:d\n\ne\n\n### Earlier runs\n\n#### d\n\nd\n")
	require.Equal(t, byte('\n'), b[len(b)-1])
	require.NotEqual(t, byte('\n'), b[len(b)-2], "one newline at the end")
}

// An empty or missing document starts with a title.
func TestReplaceOnEmpty(t *testing.T) {
	t.Parallel()
	require.Equal(t, "# Benchmarks\n\nEach section is written by the task it is named after.\n\n## bench:x\n\nx\n",
		Replace("", "## bench:x", "## bench:x\n\nx\n\n"))
}

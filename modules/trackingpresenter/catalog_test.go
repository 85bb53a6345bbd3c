package trackingpresenter

import (
	"io/fs"
	"maps"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// Every key the code uses is in every language, and no language has a key
// the others lack.
func TestCatalogHasEveryKeyInBothLanguages(t *testing.T) {
	t.Parallel()
	var want []string
	for _, k := range msgKeys {
		want = append(want, string(k))
	}
	slices.Sort(want)
	require.Len(t, slices.Compact(slices.Clone(want)), len(msgKeys), "msgKeys has duplicates")
	for _, lang := range languages {
		b, err := fs.ReadFile(messageFiles, "messages/"+string(lang)+".yaml")
		require.NoError(t, err)
		var raw map[string]string
		require.NoError(t, yaml.Unmarshal(b, &raw))
		got := slices.Sorted(maps.Keys(raw))
		require.Equal(t, want, got, "keys of %s.yaml", lang)
		for k, v := range raw {
			require.NotEmpty(t, v, "%s in %s", k, lang)
		}
	}
	c, err := loadCatalog(messageFiles)
	require.NoError(t, err)
	require.Equal(t, "Забыли самое нужное?", c.text(langRU, msgCallPickerTitle))
	require.Equal(t, "Forgot something important?", c.text(langEN, msgCallPickerTitle))
}

func TestLoadCatalogRefusesMissingAndUnknownKeys(t *testing.T) {
	t.Parallel()
	ru, err := fs.ReadFile(messageFiles, "messages/ru.yaml")
	require.NoError(t, err)
	broken := fstest.MapFS{
		"messages/ru.yaml": {Data: append(ru, []byte("\nstatus.unknown.title: x\n")...)},
		"messages/en.yaml": {Data: []byte("status.created.title: Order placed\n")},
	}
	_, err = loadCatalog(broken)
	require.ErrorContains(t, err, "messages/ru.yaml: unknown key status.unknown.title")
	require.ErrorContains(t, err, "messages/en.yaml: picker.call.title is missing or empty")
}

func TestLanguageOf(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]language{
		"": langRU, "ru": langRU, "en": langEN, "EN": langEN, "en-US": langEN, "en-gb": langEN,
		"english": langRU, "de": langRU, "ru-RU": langRU, " en ": langEN, "enx": langRU,
	} {
		require.Equal(t, want, languageOf(h), "%q", h)
	}
}

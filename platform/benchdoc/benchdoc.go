// Package benchdoc writes a benchmark's section of docs/benchmarks.md. The
// document keeps every recorded run: a new run becomes the section's body,
// and the run it replaces moves, as it was written, to the top of the
// section's "### Earlier runs", so a figure once quoted can still be found.
package benchdoc

import (
	"errors"
	"os"
	"strings"
)

// earlier heads the runs a section's current run replaced, newest first.
const earlier = "### Earlier runs"

// WriteSection makes section (which starts with heading, a "## " line) the
// current run of the section headed heading in the file at path, keeping
// the run it replaces under "### Earlier runs"; with no such section it
// appends one.
func WriteSection(path, heading, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, []byte(Replace(string(old), heading, section)), 0o644)
}

// Replace is WriteSection on the document's text.
func Replace(text, heading, section string) string {
	if text == "" {
		text = "# Benchmarks\n\nEach section is written by the task it is named after.\n"
	}
	section = strings.TrimRight(section, "\n")
	start := strings.Index(text, heading+"\n")
	if start < 0 {
		return strings.TrimRight(text, "\n") + "\n\n" + section + "\n"
	}
	// The body runs from the heading's line end to the next "## " line;
	// the search starts at that line end so an empty body is found too.
	bodyStart := start + len(heading) + 1
	body, rest := text[bodyStart:], ""
	if end := strings.Index(text[bodyStart-1:], "\n## "); end >= 0 {
		body, rest = text[bodyStart:bodyStart+end], text[bodyStart+end:]
	}
	current, runs := body, ""
	if i := strings.Index(body, "\n"+earlier+"\n"); i >= 0 {
		current, runs = body[:i], body[i+len(earlier)+2:]
	}
	current, runs = strings.Trim(current, "\n"), strings.Trim(runs, "\n")
	out := section + "\n\n" + earlier + "\n\n"
	if current != "" {
		out += "#### " + title(current) + "\n\n" + demote(current) + "\n\n"
	}
	if runs != "" {
		out += runs
	}
	out = strings.TrimRight(out, "\n") + "\n"
	if rest != "" {
		out += "\n" // a blank line before the next section
	}
	return text[:start] + out + rest
}

// title names a run by its first line up to the first ": " ("Run
// 2026-12-06 22:33 UTC on 2 CPUs (`go tool task bench:tracking`)").
func title(run string) string {
	line, _, _ := strings.Cut(run, "\n")
	line, _, _ = strings.Cut(line, ": ")
	return strings.TrimSpace(line)
}

// demote moves a run's own headings two levels down, below its "####".
func demote(run string) string {
	lines := strings.Split(run, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			lines[i] = "##" + l
		}
	}
	return strings.Join(lines, "\n")
}

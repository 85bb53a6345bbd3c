// Package e2e holds the widget's browser tests: a Go test starts the whole
// service (apptest) on a fresh database, seeds one order in each state by
// inserting real River jobs, and runs browser.mjs, which drives Debian's
// Chromium through playwright-core against /app/.
package e2e

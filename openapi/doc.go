// Package openapi holds openapi.yaml, the API document generated from the
// code by `go tool task openapi` (the `openapi` subcommand). The frontend
// generates its client from it; a test fails when it drifts from the code.
package openapi

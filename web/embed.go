// Package web holds the customer's tracking widget: a small TypeScript app
// (src/, built by Vite into dist/) whose API types are generated from
// openapi/openapi.yaml. The build output is committed and embedded here, so
// the service builds and runs without Node; modules/widget serves it at
// /app/. See web/README.md for the toolchain.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Dist is the built widget: index.html at its root, assets under assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub cannot fail on it
	}
	return sub
}

// Package widget serves the customer's tracking widget (web/dist, embedded
// in the binary) at GET /app/, and redirects /app to /app/ keeping the query
// (?eater=, ?lang=). The widget calls the public tracking endpoint from the
// same origin.
//
// Every file is answered with its content type, an ETag (a hash of its
// bytes) and Cache-Control: no-cache, so a browser revalidates and gets 304
// until a new binary ships other bytes; file names carry no hash, which
// keeps the committed build reproducible. index.html also gets a
// Content-Security-Policy that allows only same-origin scripts, styles and
// requests.
package widget

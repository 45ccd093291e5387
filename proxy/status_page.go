package proxy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// statusPage is the admin GET / page: one self-contained HTML file (inline
// CSS, vanilla JS, inline SVG) that reads /status, /drift and /metrics
// from the same listener. No CDN, no build step; it works offline.
//
//go:embed page/index.html
var statusPage []byte

// pageCSP allows the page nothing beyond itself: its one inline script
// (by hash), inline styles, and requests to this origin.
var pageCSP = func() string {
	script := statusPage
	if i := bytes.Index(script, []byte("<script>")); i >= 0 {
		script = script[i+len("<script>"):]
		if j := bytes.Index(script, []byte("</script>")); j >= 0 {
			script = script[:j]
		}
	}
	sum := sha256.Sum256(script)
	return "default-src 'none'; connect-src 'self'; img-src data:; style-src 'unsafe-inline'; " +
		"script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// serveStatusPage serves the page. It holds no data, so it needs no token
// even with admin.guard_reads: the page asks for the token and sends it
// with its own requests, in a header.
func (s *Server) serveStatusPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(statusPage)
}

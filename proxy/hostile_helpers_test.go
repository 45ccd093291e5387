package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// hostileBackend is a raw-TCP backend: it answers GET (vane's probes) with
// 200 and hands every other request, its headers read, to attack, which
// owns the connection from then on.
func hostileBackend(t *testing.T, attack func(c net.Conn, r *http.Request, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if r.Method == http.MethodGet {
						_, _ = io.Copy(io.Discard, r.Body)
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
						continue
					}
					attack(c, r, br)
					return
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// hostileConfig is one model m on every path with one version v1 at url:
// a breaker that would open after 5 failed requests of 10, no retries,
// probes of /health.
func hostileConfig(url, protocol, timeout, extra string) string {
	return fmt.Sprintf(`
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
%smodels:
  - name: m
    match: {path_prefix: /}
    protocol: %s
    timeout: %s
    health: {path: /health, interval: 200ms, timeout: 200ms}
    circuit_breaker: {min_requests: 5, failure_ratio: 0.5, open_for: 1m}
    retry: {attempts: 1}
    versions:
      - name: v1
        endpoints: [%q]
`, extra, protocol, timeout, url)
}

// withModelKeys inserts model-level keys (indented for a model) into a
// hostileConfig.
func withModelKeys(cfg, keys string) string {
	return string(bytes.Replace([]byte(cfg), []byte("    retry:"), []byte(keys+"    retry:"), 1))
}

// h2conn is a raw HTTP/2 client connection driven frame by frame.
type h2conn struct {
	c    net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
	next uint32
	// settings are the server's SETTINGS values as read.
	settings map[http2.SettingID]uint32
}

// dialH2 opens an h2c connection with prior knowledge and sends settings.
func dialH2(t *testing.T, addr string, settings ...http2.Setting) *h2conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = io.WriteString(c, http2.ClientPreface)
	require.NoError(t, err)
	h := &h2conn{c: c, fr: http2.NewFramer(c, c), next: 1, settings: map[http2.SettingID]uint32{}}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	require.NoError(t, h.fr.WriteSettings(settings...))
	return h
}

// headers opens a stream; fields after the pseudo-headers come in pairs.
func (h *h2conn) headers(t *testing.T, method, path string, endStream bool, fields ...string) uint32 {
	t.Helper()
	id, err := h.tryHeaders(method, path, endStream, fields...)
	require.NoError(t, err)
	return id
}

// tryHeaders is headers for connections the server may have closed.
func (h *h2conn) tryHeaders(method, path string, endStream bool, fields ...string) (uint32, error) {
	h.buf.Reset()
	all := append([]string{":method", method, ":scheme", "http", ":authority", "vane.test", ":path", path}, fields...)
	for i := 0; i+1 < len(all); i += 2 {
		if err := h.enc.WriteField(hpack.HeaderField{Name: all[i], Value: all[i+1]}); err != nil {
			return 0, err
		}
	}
	id := h.next
	h.next += 2
	return id, h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(),
		EndStream: endStream, EndHeaders: true})
}

// h2resp is what one stream got.
type h2resp struct {
	status int
	header map[string]string
	body   []byte
	ended  bool // END_STREAM seen
	reset  bool // RST_STREAM seen
	data   bool // at least one DATA frame seen
}

// errConnClosed is collect's error when the server closed the connection
// (EOF or GOAWAY).
var errConnClosed = errors.New("connection closed by the server")

// collect reads frames until done says the streams are where the test
// wants them, the server closes the connection, or wait passes.
func (h *h2conn) collect(wait time.Duration, got map[uint32]*h2resp, done func() bool) error {
	_ = h.c.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = h.c.SetReadDeadline(time.Time{}) }()
	at := func(id uint32) *h2resp {
		if got[id] == nil {
			got[id] = &h2resp{header: map[string]string{}}
		}
		return got[id]
	}
	for !done() {
		f, err := h.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return errConnClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			return errConnClosed // reset by the server
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = f.ForeachSetting(func(s http2.Setting) error { h.settings[s.ID] = s.Val; return nil })
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = h.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			return errConnClosed
		case *http2.MetaHeadersFrame:
			r := at(f.StreamID)
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					r.status, _ = strconv.Atoi(hf.Value)
				} else {
					r.header[hf.Name] = hf.Value
				}
			}
			r.ended = r.ended || f.StreamEnded()
		case *http2.DataFrame:
			r := at(f.StreamID)
			r.body = append(r.body, f.Data()...)
			r.data = true
			r.ended = r.ended || f.StreamEnded()
			if n := uint32(len(f.Data())); n > 0 { // keep the answers flowing
				_ = h.fr.WriteWindowUpdate(0, n)
				_ = h.fr.WriteWindowUpdate(f.StreamID, n)
			}
		case *http2.RSTStreamFrame:
			at(f.StreamID).reset = true
		}
	}
	return nil
}

// allEnded is a collect condition: every one of ids ended or was reset.
func allEnded(got map[uint32]*h2resp, ids []uint32) func() bool {
	return func() bool {
		for _, id := range ids {
			if r := got[id]; r == nil || !(r.ended || r.reset) {
				return false
			}
		}
		return true
	}
}

// rawRoundTrip writes request on a new connection and reads one answer.
func rawRoundTrip(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

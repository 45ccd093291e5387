package toy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Known rows: the protocol examples plus one clear case per class.
var (
	rowSetosa     = []float64{5.1, 3.5, 1.4, 0.2} // 0 in both versions
	rowBorder1    = []float64{6.8, 2.8, 4.8, 1.4} // v1: 1, v2: 2 (petal_length >= 4.75)
	rowBorder2    = []float64{6.0, 3.4, 4.5, 1.6} // v1: 1, v2: 2 (petal_width >= 1.55)
	rowVersicolor = []float64{5.9, 3.0, 4.2, 1.3} // 1 in both
	rowVirginica  = []float64{6.3, 3.3, 6.0, 2.5} // 2 in both
)

// serve starts opts behind a real HTTP server.
func serve(t *testing.T, opts Options) (*Model, *httptest.Server) {
	t.Helper()
	m := New(opts)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any // nil unless the body is a JSON object
}

// call sends one request; header holds alternating names and values.
func call(t *testing.T, srv *httptest.Server, method, path, contentType, body string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func get(t *testing.T, srv *httptest.Server, path string) reply {
	t.Helper()
	return call(t, srv, http.MethodGet, path, "", "")
}

func post(t *testing.T, srv *httptest.Server, path, body string) reply {
	t.Helper()
	return call(t, srv, http.MethodPost, path, "application/json", body)
}

// mustJSON marshals v for request bodies.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// ints converts a decoded JSON list of numbers.
func ints(t *testing.T, v any) []int {
	t.Helper()
	list, ok := v.([]any)
	require.True(t, ok, "want a list, got %#v", v)
	out := make([]int, len(list))
	for i, e := range list {
		f, ok := e.(float64)
		require.True(t, ok, "element %d: want a number, got %#v", i, e)
		out[i] = int(f)
	}
	return out
}

// requireError checks a JSON error answer.
func requireError(t *testing.T, r reply, status int) {
	t.Helper()
	require.Equal(t, status, r.status, r.raw)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	msg, ok := r.body["error"].(string)
	require.True(t, ok, "want {\"error\": \"...\"}, got %s", r.raw)
	require.NotEmpty(t, msg)
}

// versions are the two visibly different versions under test, with the
// classes they give rowSetosa, rowBorder1, rowBorder2, rowVersicolor,
// rowVirginica.
var versions = []struct {
	version string
	classes []int
}{
	{"v1", []int{0, 1, 1, 1, 2}},
	{"v2", []int{0, 2, 2, 1, 2}},
}

var allRows = [][]float64{rowSetosa, rowBorder1, rowBorder2, rowVersicolor, rowVirginica}

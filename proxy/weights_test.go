package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// startVaneFile serves the config file at path with a Server that knows
// its file (as `vane serve` does), with extra options.
func startVaneFile(t *testing.T, path string, opts Options) *vane {
	t.Helper()
	cfg, raw, err := configs.Load(path)
	require.NoError(t, err)
	reg := NewRegistry()
	opts.ConfigPath, opts.Registerer, opts.Gatherer, opts.Logger = path, reg, reg, testLogger(t)
	srv, err := New(cfg, raw, opts)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	adm := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(func() {
		cancel()
		adm.Close()
		<-done
	})
	v := &vane{srv: srv, reg: reg, url: "http://" + ln.Addr().String(), admin: adm.URL, addr: ln.Addr().String()}
	waitAllRoutable(t, srv)
	return v
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	text = strings.Replace(text, "models:\n", "state_dir: "+filepath.Join(dir, "state")+"\nmodels:\n", 1)
	path := filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func adminDo(t *testing.T, method, url, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return resp.StatusCode, out
}

func servedWeights(srv *Server) string {
	return configs.FormatWeights(configs.WeightsOf(srv.Config())[0].Versions)
}

func TestWeightsEndpoints(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	text := strings.Replace(twoVersions(b1.URL, b2.URL, 90, 10, ""), "  listen: \"127.0.0.1:1\"\n",
		"  listen: \"127.0.0.1:1\"\n  token_file: "+tokenFile+"\n", 1)
	path := writeConfig(t, text)
	v := startVaneFile(t, path, Options{RolloutTick: -1})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	base := v.admin + "/models/iris"

	code, body := adminDo(t, http.MethodGet, base+"/weights", "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []any{map[string]any{"version": "v1", "weight": 90.0}, map[string]any{"version": "v2", "weight": 10.0}}, body["versions"])

	code, _ = adminDo(t, http.MethodPut, base+"/weights", `{"v1":50,"v2":50}`, nil)
	assert.Equal(t, http.StatusUnauthorized, code, "mutations need the token")

	code, body = adminDo(t, http.MethodPut, base+"/weights", `{"v1":50,"v2":50}`, auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "v1=50 v2=50", servedWeights(v.srv), "applied before the answer")
	assert.Equal(t, v.srv.Status().ConfigHash, body["config_hash"])

	code, body = adminDo(t, http.MethodPost, base+"/promote?version=v2", "", auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "v1=0 v2=100", servedWeights(v.srv))

	code, body = adminDo(t, http.MethodPost, base+"/rollback", "", auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "v1=50 v2=50", servedWeights(v.srv), "rollback restores the weights before the promote")

	code, body = adminDo(t, http.MethodPost, base+"/promote", `{"version":"v1"}`, auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "v1=100 v2=0", servedWeights(v.srv))

	before, _ := os.ReadFile(path)
	code, body = adminDo(t, http.MethodPut, base+"/weights", `{"v1":0}`, auth)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body["problems"], "models[0].versions (line 15): at least one version must have weight > 0 (shadows' weights do not count)")
	code, _ = adminDo(t, http.MethodPut, base+"/weights", `{"v9":1}`, auth)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = adminDo(t, http.MethodPut, base+"/weights", `not json`, auth)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = adminDo(t, http.MethodPut, v.admin+"/models/nope/weights", `{"v1":1}`, auth)
	assert.Equal(t, http.StatusNotFound, code)
	after, _ := os.ReadFile(path)
	assert.Equal(t, string(before), string(after), "refused changes leave the file alone")
	assert.Equal(t, "v1=100 v2=0", servedWeights(v.srv))

	ed := &configs.WeightEditor{Path: path}
	hist, err := ed.History("iris")
	require.NoError(t, err)
	require.Len(t, hist, 4)
	assert.True(t, strings.HasPrefix(hist[0].Who, "PUT /models/iris/weights from 127.0.0.1"), hist[0].Who)
}

func TestWeightsEndpointsAnswer409WithoutAFile(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	path := writeConfig(t, twoVersions(b1.URL, b2.URL, 90, 10, ""))
	v := startVaneFile(t, path, Options{RolloutTick: -1, ControlPlane: "cp.example:18000"})
	code, body := adminDo(t, http.MethodPut, v.admin+"/models/iris/weights", `{"v1":1}`, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body["error"], "control plane cp.example:18000")
	code, _ = adminDo(t, http.MethodGet, v.admin+"/models/iris/weights", "", nil)
	assert.Equal(t, http.StatusOK, code, "reading still works")

	w := startVane(t, twoVersions(b1.URL, b2.URL, 90, 10, ""))
	code, body = adminDo(t, http.MethodPost, w.admin+"/models/iris/rollback", "", nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body["error"], "no file")
}

// TestWeightsSetUnderLoad changes weights with the CLI's code while
// clients send requests: the running vane (file watch) applies the change,
// and no request fails. Then rollback restores the weights exactly.
func TestWeightsSetUnderLoad(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	path := writeConfig(t, fileConfig(b1.URL, b2.URL, 90, 10))
	r := runAt(t, path)

	l := startLoad(t, r.url+"/v1/models/iris:predict", 4)
	waitWeights := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := statusOfRunning(t, r.admin)
			got := configs.FormatWeights([]configs.VersionWeight{
				{Version: "v1", Weight: st.Models[0].Versions[0].Weight},
				{Version: "v2", Weight: st.Models[0].Versions[1].Weight}})
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the running vane never applied %s (serving %s)", want, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ed := &configs.WeightEditor{Path: path}
	_, err := ed.Set("iris", map[string]float64{"v2": 100, "v1": 0}, "vane weights set", "")
	require.NoError(t, err)
	waitWeights("v1=0 v2=100")
	_, err = ed.Rollback("iris", "vane weights rollback")
	require.NoError(t, err)
	waitWeights("v1=90 v2=10")
	l.end()
	assert.Zero(t, l.failed.Load(), "failures: %v", l.samples)
	assert.Positive(t, l.ok.Load())
}

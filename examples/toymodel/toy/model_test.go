package toy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const irisBody = `{"instances": [[6.8, 2.8, 4.8, 1.4]]}`

// predictCalls are one predict-like request per protocol.
var predictCalls = []struct {
	name, path, contentType, body string
}{
	{"kserve-v1", "/v1/models/iris:predict", "application/json", irisBody},
	{"kserve-v2", "/v2/models/iris/infer", "application/json",
		`{"inputs": [{"name": "input0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}`},
	{"mlflow", "/invocations", "application/json", irisBody},
	{"openai-completions", "/v1/completions", "application/json", `{"prompt": "hi"}`},
	{"openai-chat", "/v1/chat/completions", "application/json", `{"messages": [{"role": "user", "content": "hi"}]}`},
}

// readinessPaths answer 200 while healthy and 503 while failing.
var readinessPaths = []string{
	"/", "/v1/models/iris", "/v1/models/iris/versions/v1", "/v2/health/ready",
	"/v2/models/iris/ready", "/v2/models/iris/versions/v1/ready", "/ping", "/health",
}

// alwaysUpPaths answer 200 even while failing.
var alwaysUpPaths = []string{"/v2", "/v2/health/live", "/v2/models/iris", "/v1/models"}

func TestDefaults(t *testing.T) {
	m := New(Options{})
	assert.Equal(t, "iris", m.Name())
	assert.Equal(t, "v1", m.Version())
	assert.Equal(t, DefaultFeatures, m.opts.Features)
	assert.Equal(t, DefaultStreamInterval, m.opts.StreamInterval)
	assert.Equal(t, uint64(1), m.opts.Seed)
	assert.Equal(t, 1.0, New(Options{FailRate: 7}).opts.FailRate)
}

func TestReadiness(t *testing.T) {
	m, srv := serve(t, Options{})
	for _, failing := range []bool{false, true, false} {
		m.SetFailing(failing)
		for _, path := range readinessPaths {
			t.Run(path, func(t *testing.T) {
				r := get(t, srv, path)
				assert.Equal(t, "v1", r.header.Get(VersionHeader))
				if failing {
					requireError(t, r, http.StatusServiceUnavailable)
				} else {
					assert.Equal(t, http.StatusOK, r.status, r.raw)
				}
			})
		}
		for _, path := range alwaysUpPaths {
			t.Run(path, func(t *testing.T) {
				assert.Equal(t, http.StatusOK, get(t, srv, path).status)
			})
		}
	}
	assert.Zero(t, m.Requests(), "readiness is not predict-like")
}

func TestSetFailingPredict(t *testing.T) {
	m, srv := serve(t, Options{})
	for _, c := range predictCalls {
		t.Run(c.name, func(t *testing.T) {
			m.SetFailing(true)
			r := call(t, srv, http.MethodPost, c.path, c.contentType, c.body)
			requireError(t, r, http.StatusServiceUnavailable)
			assert.Equal(t, "v1", r.header.Get(VersionHeader))
			m.SetFailing(false)
			r = call(t, srv, http.MethodPost, c.path, c.contentType, c.body)
			assert.Equal(t, http.StatusOK, r.status, r.raw)
		})
	}
	assert.Equal(t, int64(2*len(predictCalls)), m.Requests())
}

func TestNotFoundAndMethods(t *testing.T) {
	_, srv := serve(t, Options{})
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", http.StatusNotFound},
		{"GET", "/v1/models/other", http.StatusNotFound},
		{"POST", "/v1/models/other:predict", http.StatusNotFound},
		{"POST", "/v1/models/iris/versions/v9:predict", http.StatusNotFound},
		{"POST", "/v1/models/iris:explain", http.StatusNotFound},
		{"GET", "/v1/models/iris/metadata", http.StatusNotFound},
		{"GET", "/v2/models/other/ready", http.StatusNotFound},
		{"POST", "/v2/models/iris/versions/v9/infer", http.StatusNotFound},
		{"GET", "/v2/models/iris/bogus", http.StatusNotFound},
		{"GET", "/v2/repository/index", http.StatusNotFound},
		{"GET", "/v1/models/iris:predict", http.StatusMethodNotAllowed},
		{"POST", "/v1/models/iris", http.StatusMethodNotAllowed},
		{"GET", "/v2/models/iris/infer", http.StatusMethodNotAllowed},
		{"DELETE", "/v2/health/ready", http.StatusMethodNotAllowed},
		{"GET", "/invocations", http.StatusMethodNotAllowed},
		{"POST", "/ping", http.StatusMethodNotAllowed},
		{"GET", "/v1/chat/completions", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := call(t, srv, tc.method, tc.path, "", "")
			requireError(t, r, tc.status)
			assert.Equal(t, "v1", r.header.Get(VersionHeader))
			if tc.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}
}

func TestFailRate(t *testing.T) {
	statuses := func(opts Options, n int) []int {
		_, srv := serve(t, opts)
		out := make([]int, n)
		for i := range out {
			out[i] = post(t, srv, "/v1/models/iris:predict", irisBody).status
		}
		return out
	}
	t.Run("always", func(t *testing.T) {
		for _, s := range statuses(Options{FailRate: 1}, 20) {
			assert.Equal(t, http.StatusServiceUnavailable, s)
		}
	})
	t.Run("never", func(t *testing.T) {
		for _, s := range statuses(Options{}, 20) {
			assert.Equal(t, http.StatusOK, s)
		}
	})
	t.Run("deterministic per seed", func(t *testing.T) {
		a := statuses(Options{FailRate: 0.3, Seed: 7}, 200)
		b := statuses(Options{FailRate: 0.3, Seed: 7}, 200)
		assert.Equal(t, a, b)
		failed := 0
		for _, s := range a {
			if s == http.StatusServiceUnavailable {
				failed++
			}
		}
		assert.InDelta(t, 60, failed, 30, "about 30%% of 200 fail")
	})
	t.Run("readiness unaffected", func(t *testing.T) {
		_, srv := serve(t, Options{FailRate: 1})
		assert.Equal(t, http.StatusOK, get(t, srv, "/v1/models/iris").status)
	})
}

func TestConcurrentRequests(t *testing.T) {
	m, srv := serve(t, Options{FailRate: 0.5})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := predictCalls[(w+i)%len(predictCalls)]
				resp, err := srv.Client().Post(srv.URL+c.path, c.contentType, strings.NewReader(c.body))
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, resp.StatusCode)
				if i%5 == 0 {
					m.SetFailing(i%10 == 0)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(workers*each), m.Requests())
}

func TestDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	_, srv := serve(t, Options{Delay: delay})
	for _, c := range predictCalls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := call(t, srv, http.MethodPost, c.path, c.contentType, c.body)
			assert.Equal(t, http.StatusOK, r.status, r.raw)
			assert.GreaterOrEqual(t, time.Since(start), delay)
		})
	}
	t.Run("readiness not delayed", func(t *testing.T) {
		start := time.Now()
		assert.Equal(t, http.StatusOK, get(t, srv, "/v2/health/ready").status)
		assert.Less(t, time.Since(start), delay)
	})
}

func TestDelayStopsWhenClientLeaves(t *testing.T) {
	_, srv := serve(t, Options{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/invocations", strings.NewReader(irisBody))
	require.NoError(t, err)
	_, err = srv.Client().Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// srv.Close in cleanup waits for the handler: it must not sleep an hour.
}

func TestBodyTooLarge(t *testing.T) {
	_, srv := serve(t, Options{})
	big := `{"instances": [` + strings.Repeat(`[1, 2, 3, 4],`, maxBodyBytes/12) + `[1, 2, 3, 4]]}`
	requireError(t, post(t, srv, "/v1/models/iris:predict", big), http.StatusRequestEntityTooLarge)
}

func TestRootDescribesModel(t *testing.T) {
	_, srv := serve(t, Options{Name: "flowers", Version: "v7"})
	r := get(t, srv, "/")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "flowers", r.body["name"])
	assert.Equal(t, "v7", r.body["version"])
	assert.Equal(t, "v7", r.header.Get(VersionHeader))
	assert.Equal(t, http.StatusOK, get(t, srv, "/v1/models/flowers").status)
	requireError(t, get(t, srv, "/v1/models/iris"), http.StatusNotFound)
}

package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForwardsBodiesAndHeaders(t *testing.T) {
	var (
		mu      sync.Mutex // guards got and gotBody: health probes call the handler too
		got     http.Header
		gotBody string
	)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got, gotBody = r.Header.Clone(), string(b)
			mu.Unlock()
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must not reach the client")
		w.Header().Set("X-Kept", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"predictions":[1]}`))
	}))
	defer be.Close()
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))

	req, _ := http.NewRequest(http.MethodPost, v.url+"/v1/models/iris:predict?x=1", strings.NewReader(`{"instances":[[1,2,3,4]]}`))
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body := new(strings.Builder)
	_, _ = fmt.Fprint(body, readAll(t, resp))

	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, `{"predictions":[1]}`, body.String())
	assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
	assert.Equal(t, "abc-123", resp.Header.Get("X-Request-Id"))
	assert.Equal(t, "yes", resp.Header.Get("X-Kept"))
	assert.Empty(t, resp.Header.Get("X-Hop"), "field named by Connection must be removed")

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, `{"instances":[[1,2,3,4]]}`, gotBody)
	assert.Equal(t, "abc-123", got.Get("X-Request-Id"))
	assert.Empty(t, got.Get("X-Secret"), "field named by Connection must be removed")
	assert.Equal(t, "10.1.2.3, 127.0.0.1", got.Get("X-Forwarded-For"))
	assert.Equal(t, "http", got.Get("X-Forwarded-Proto"))
	assert.Equal(t, strings.TrimPrefix(v.url, "http://"), got.Get("X-Forwarded-Host"))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	_, err := bufio.NewReader(resp.Body).WriteTo(&b)
	require.NoError(t, err)
	return b.String()
}

func TestGeneratesRequestID(t *testing.T) {
	be := backend(t, "v1")
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 1, ""))
	seen := map[string]bool{}
	for range 50 {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		id := resp.Header.Get("X-Request-Id")
		require.Len(t, id, 32)
		assert.False(t, seen[id], "ids must be unique")
		seen[id] = true
	}
}

func TestWeightedSplitNamesTheVersionThatAnswered(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 80, 20, ""))
	const n = 2000
	counts := map[string]int{}
	for range n {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", `{"instances":[[1,2,3,4]]}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, resp.Header.Get("X-Backend-Version"), resp.Header.Get("X-Vane-Version"))
		counts[resp.Header.Get("X-Vane-Version")]++
	}
	// Smooth weighted round robin is exact over each cycle of 5.
	assert.Equal(t, n*8/10, counts["v1"])
	assert.Equal(t, n*2/10, counts["v2"])
}

func TestStickyUsersKeepTheirVersion(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 80, 20, "    routing:\n      sticky_header: x-user-id\n"))
	users := map[string]string{}
	v2 := 0
	for round := range 3 {
		// Users come in another order each round (and 601 of them, not a
		// multiple of the 5-slot weight cycle): without stickiness the
		// weighted round robin would move many of them.
		order := rand.New(rand.NewPCG(uint64(round), 7)).Perm(601)
		for _, u := range order {
			id := fmt.Sprintf("user-%d", u)
			resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"x-user-id": id})
			ver := resp.Header.Get("X-Vane-Version")
			if round == 0 {
				users[id] = ver
				if ver == "v2" {
					v2++
				}
				continue
			}
			require.Equal(t, users[id], ver, "user %s moved", id)
		}
	}
	assert.InDelta(t, 120, v2, 40, "sticky shares follow the weights")
}

func TestOverrideHeader(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 100, 0, ""))
	for range 5 {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "v2"})
		assert.Equal(t, "v2", resp.Header.Get("X-Backend-Version"))
		assert.Equal(t, "v2", resp.Header.Get("X-Vane-Version"))
	}
	resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "v9"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e apiError
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	assert.Equal(t, "iris", e.Model)
	assert.Equal(t, "v9", e.Version)
	assert.Contains(t, e.Error, "unknown version")
}

func TestOwnErrorsAreJSON(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // health probes pass
			return
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cases := []struct {
		name, cfg, path string
		ready           bool
		code            int
		errText         string
	}{
		{"no route", twoVersions(deadURL, deadURL, 1, 1, ""), "/v2/other", false, 404, "no model"},
		{"every endpoint down", twoVersions(deadURL, deadURL, 1, 1, ""), "/v1/models/iris:predict", false, 503, "no routable version"},
		{"timeout", strings.Replace(twoVersions(slow.URL, slow.URL, 1, 1, ""), "timeout: 2s", "timeout: 200ms", 1), "/v1/models/iris:predict", true, 504, "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := startVaneUnready(t, tc.cfg)
			if tc.ready {
				waitReady(t, v.admin)
			}
			began := time.Now()
			resp, body := post(t, v.url+tc.path, "{}", nil)
			assert.Equal(t, tc.code, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			assert.NotEmpty(t, e["error"])
			assert.Contains(t, body, tc.errText)
			assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))
			if tc.code == 504 {
				assert.Less(t, time.Since(began), 5*time.Second)
			}
		})
	}
}

func TestServerSentEventsFlowAsSent(t *testing.T) {
	cases := []struct {
		name, protocol, accept string
	}{
		{"openai model streams", "openai", ""},
		{"any model streams when the client accepts event-stream", "kserve-v1", "text/event-stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			unblock := func() { once.Do(func() { close(release) }) }
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet { // health probes pass
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				fl := w.(http.Flusher)
				fmt.Fprint(w, "data: {\"n\":1}\n\n")
				fl.Flush()
				select { // the second event waits until the client saw the first
				case <-release:
				case <-time.After(5 * time.Second):
				}
				fmt.Fprint(w, "data: {\"n\":2}\n\ndata: [DONE]\n\n")
				fl.Flush()
			}))
			defer be.Close()
			defer unblock()
			cfg := strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "/v1/models/iris", "/v1/", 1)
			cfg = strings.Replace(cfg, "protocol: kserve-v1", "protocol: "+tc.protocol, 1)
			v := startVane(t, cfg)
			req, _ := http.NewRequest(http.MethodPost, v.url+"/v1/chat/completions", strings.NewReader(`{"stream":true}`))
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			start := time.Now()
			resp, err := httpClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
			r := bufio.NewReader(resp.Body)
			first, err := r.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "data: {\"n\":1}\n", first)
			// Had vane buffered the stream, the first event would come only
			// after the backend's 5 s fallback ended the stream.
			require.Less(t, time.Since(start), 4*time.Second, "the first event waited for the end of the stream")
			unblock()
			rest := new(strings.Builder)
			_, err = r.WriteTo(rest)
			require.NoError(t, err)
			assert.Contains(t, rest.String(), "data: [DONE]")
		})
	}
}

func TestMetricsCountRequests(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 3, 1, ""))
	for range 8 {
		post(t, v.url+"/v1/models/iris:predict", "{}", nil)
	}
	post(t, v.url+"/nothing", "{}", nil)
	assert.Equal(t, 6.0, testutil.ToFloat64(v.srv.metrics.requests.WithLabelValues("iris", "v1", "200")))
	assert.Equal(t, 2.0, testutil.ToFloat64(v.srv.metrics.requests.WithLabelValues("iris", "v2", "200")))
	assert.Equal(t, 1.0, testutil.ToFloat64(v.srv.metrics.requests.WithLabelValues("", "", "404")))
	assert.Equal(t, 0.75, testutil.ToFloat64(v.srv.metrics.share.WithLabelValues("iris", "v1")))
	assert.Equal(t, 3.0, testutil.ToFloat64(v.srv.metrics.weight.WithLabelValues("iris", "v1")))
	assert.Equal(t, 1.0, testutil.ToFloat64(v.srv.metrics.reloadOK))
	n, err := testutil.GatherAndCount(v.reg, "vane_request_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestDrainFinishesInFlightRequests(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	}))
	defer slow.Close()
	v := startVane(t, twoVersions(slow.URL, slow.URL, 1, 1, ""))
	const n = 20
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader("{}"))
			if err != nil {
				codes <- -1
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	require.Eventually(t, func() bool { return inFlight(v) == n }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, v.stop(), "drain must complete")
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	_, err := net.DialTimeout("tcp", v.addr, time.Second)
	assert.Error(t, err, "no new connections after drain")
}

func inFlight(v *vane) int64 {
	var n int64
	for _, ep := range v.srv.snap.Load().table.Endpoints() {
		n += ep.InFlight()
	}
	return n
}

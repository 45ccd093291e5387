package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusPageServed(t *testing.T) {
	be := backend(t, "v1")
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))
	resp, err := http.Get(v.admin + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'sha256-")
	assert.Contains(t, string(body), "<title>vane status</title>")
	assert.NotRegexp(t, `(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|fetch\(\s*["'](https?:)?//`, string(body),
		"no external resource: the page works offline")
	resp, err = http.Get(v.admin + "/nope")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "only / is the page")
}

// chromium finds Debian's chromium. CI installs it (.ci/run) and sets CI:
// there a missing browser fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// TestStatusPageInChromium drives the status page in headless Chromium
// against a vane with real toy backends and admin.guard_reads on: the page
// asks for the token, renders both versions once it has it, and draws a
// histogram of the feature that drifts once the drift alert is raised,
// without a console error. The screenshot is kept (its path is logged).
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	backends := []string{toyIris(t, "v1"), toyIris(t, "v2")}
	dir := t.TempDir()
	const token = "s3cret-for-the-page"
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	cfg := fmt.Sprintf(`
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
  token_file: %q
  guard_reads: true
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    protocol: kserve-v1
    timeout: 5s
    versions:
      - {name: v1, weight: 3, endpoints: [%q]}
      - {name: v2, weight: 1, endpoints: [%q]}
    monitor:
      window: 100
      reference: {warmup: 200}
      features: [sepal_length, sepal_width, petal_length, petal_width]
`, tokenFile, backends[0], backends[1])
	v := startVane(t, cfg)

	// Reference traffic for both versions, then the page.
	rng := rand.New(rand.NewPCG(7, 7))
	send := func(version string, n int, shift float64) {
		for range n {
			row := fmt.Sprintf(`{"instances":[[%.2f,%.2f,%.2f,%.2f]]}`, 5.8+0.8*rng.NormFloat64(),
				3.0+0.4*rng.NormFloat64(), 3.8+1.7*rng.NormFloat64()+shift, 1.2+0.7*rng.NormFloat64())
			resp, _ := post(t, v.url+"/v1/models/iris:predict", row, map[string]string{"X-Vane-Version": version})
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	send("v1", 220, 0)
	send("v2", 220, 0)

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.WindowSize(1280, 1400),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Every console error, uncaught exception and browser log error
	// counts, but the 401s the page gets before it has the token: the
	// browser logs those as network errors by itself.
	var mu sync.Mutex // guards problems and tokenGiven
	var problems []string
	tokenGiven := false
	messages := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
				continue
			}
			mu.Lock()
			if tokenGiven || m.Source != "network" || !strings.Contains(m.Text, "401") {
				problems = append(problems, m.String()+" "+m.URL)
			}
			mu.Unlock()
		}
	}()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(v.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#banner.show")),
	), "the page asks for the token")
	bannerText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#banner")))
	require.NoError(t, err)
	assert.Contains(t, bannerText, "guard_reads")

	mu.Lock()
	tokenGiven = true
	mu.Unlock()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#saveToken")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-version="v1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-version="v2"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.feature[data-feature="petal_length"]`)),
	), "the page renders both versions once it has the token")
	before, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.hist").length`))
	require.NoError(t, err)
	assert.Zero(t, before, "no drift yet, no plot")
	url, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.NotContains(t, url, token, "the token never goes in the URL")

	// Drift: petal_length of v2 moves by two of its standard deviations.
	send("v2", 450, 3.5)
	require.Eventually(t, func() bool {
		for _, m := range v.srv.monitor.Report().Models {
			for _, vr := range m.Versions {
				for _, f := range vr.Features {
					if vr.Version == "v2" && f.Feature == "petal_length" && f.Drifted {
						return true
					}
				}
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the monitor raises the alert")
	send("v2", 20, 3.5) // 470+20 rows: the open window holds 90 drifted values to plot

	plot := chromedp.CSS(`svg.hist[data-feature="petal_length"][data-version="v2"]`)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(plot)), "a drift plot appears after drift")
	var legend string
	require.Eventually(t, func() bool { // the page refreshes every 2s
		legend, err = chromedp.Run(ctx, chromedp.TextContent(plot))
		return err == nil && strings.Contains(legend, "open window (90)")
	}, 15*time.Second, 200*time.Millisecond, "the plot shows the open window's 90 values: %q", legend)
	assert.Contains(t, legend, "reference (200)")
	// The window's mass sits in the top bins, the reference's is even.
	top, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('svg.hist[data-feature="petal_length"][data-version="v2"] rect title')].map(t => t.textContent)`))
	require.NoError(t, err)
	require.NotEmpty(t, top)
	assert.Contains(t, top[len(top)-1], "window", "the last bar is the window's top bin")
	assert.NotContains(t, top[len(top)-1], "window 0%", "drifted values fill the top bin")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)

	shot := filepath.Join(os.TempDir(), "vane-artifacts", "status-page.png")
	require.NoError(t, os.MkdirAll(filepath.Dir(shot), 0o755))
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("status page screenshot: %s", shot)

	cancel() // ends the console subscription
	<-consoleDone
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, problems, "no console errors")
}

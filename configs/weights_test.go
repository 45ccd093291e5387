package configs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commentedYAML is written the way people write configs: comments
// everywhere (on the weight lines too), odd spacing, quoting, flow and
// block styles, long lines a re-encoder would fold, an anchor.
const commentedYAML = `# vane config for the iris team
#   owner: ml-platform   (do not reformat)

listen:   "127.0.0.1:8080"     # data plane
admin: {listen: '127.0.0.1:9901'}   # flow style, single quotes

state_dir: STATE

defaults: &probe   # not a vane key: see below
models:

  # the iris classifier; weights move during canaries
  - name: iris
    match: {path_prefix: /v1/models/iris, headers: {x-team: "ml"}}
    protocol: kserve-v1
    versions:
      # the stable one
      - name: v1
        weight: 90      # percent-ish
        endpoints: ["http://127.0.0.1:8501", "http://127.0.0.1:8511", "http://127.0.0.1:8521", "http://127.0.0.1:8531"]
      - {name: v2, weight: 10, endpoints: ["http://127.0.0.1:8502"]}   # canary, flow style
      - name: v3
        # a shadow candidate, weight left to its default? no: explicit
        weight:   0.0
        endpoints:
          - http://127.0.0.1:8503
    health:
      interval: 5s   # probes

  - name: other
    match:
      path_prefix: /other
    versions:
      - name: a
        weight: 1
        endpoints: ["http://127.0.0.1:9501"]
`

func commentedConfig(t *testing.T) (path, text string) {
	t.Helper()
	dir := t.TempDir()
	// "defaults" is not a vane key; drop it (and its anchor) but keep the
	// rest as written.
	text = strings.Replace(commentedYAML, "defaults: &probe   # not a vane key: see below\n", "", 1)
	text = strings.Replace(text, "STATE", filepath.Join(dir, "state"), 1)
	path = filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o640))
	_, err := Parse([]byte(text))
	require.NoError(t, err, "the test config must be valid")
	return path, text
}

// diffLines returns the 1-based numbers of the lines that differ; the two
// texts must have the same number of lines.
func diffLines(t *testing.T, a, b string) []int {
	t.Helper()
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	require.Equal(t, len(la), len(lb), "line count changed")
	var out []int
	for i := range la {
		if la[i] != lb[i] {
			out = append(out, i+1)
		}
	}
	return out
}

func TestSetChangesOnlyTheWeightValues(t *testing.T) {
	path, before := commentedConfig(t)
	ed := &WeightEditor{Path: path}
	ch, err := ed.Set("iris", map[string]float64{"v1": 0, "v2": 100, "v3": 2.5}, "test", "")
	require.NoError(t, err)
	assert.True(t, ch.Changed)
	after, err := os.ReadFile(path)
	require.NoError(t, err)

	// Exactly the three weight lines differ, and on them only the value.
	assert.Equal(t, []int{18, 20, 23}, diffLines(t, before, string(after)))
	lb, la := strings.Split(before, "\n"), strings.Split(string(after), "\n")
	assert.Equal(t, strings.Replace(lb[17], "weight: 90 ", "weight: 0 ", 1), la[17])
	assert.Equal(t, strings.Replace(lb[19], "weight: 10,", "weight: 100,", 1), la[19])
	assert.Equal(t, strings.Replace(lb[22], "weight:   0.0", "weight:   2.5", 1), la[22])

	cfg, err := Parse(after)
	require.NoError(t, err)
	assert.Equal(t, []VersionWeight{{"v1", 0}, {"v2", 100}, {"v3", 2.5}}, WeightsOf(cfg)[0].Versions)
	assert.Equal(t, []VersionWeight{{"a", 1}}, WeightsOf(cfg)[1].Versions)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "the file keeps its mode")
}

func TestSetInsertsAMissingWeightLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	text := "models:\n  - name: m\n    match: {path_prefix: /}\n    versions:\n      - name: a   # default weight 1\n        endpoints: [\"http://127.0.0.1:1\"]\n      - name: b\n        weight: 0\n        endpoints: [\"http://127.0.0.1:2\"]\n"
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	_, err := (&WeightEditor{Path: path}).Set("m", map[string]float64{"a": 3, "b": 7}, "test", "")
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	want := strings.Replace(text, "# default weight 1\n", "# default weight 1\n        weight: 3\n", 1)
	want = strings.Replace(want, "weight: 0\n", "weight: 7\n", 1)
	assert.Equal(t, want, string(got))
}

func TestSetRefusesBadInputAndKeepsTheFile(t *testing.T) {
	path, before := commentedConfig(t)
	ed := &WeightEditor{Path: path}
	for name, w := range map[string]map[string]float64{
		"all zero":        {"v1": 0, "v2": 0, "v3": 0},
		"negative":        {"v1": -1},
		"unknown version": {"v9": 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ed.Set("iris", w, "test", "")
			require.Error(t, err)
			got, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, before, string(got))
		})
	}
	_, err := ed.Set("nope", map[string]float64{"v1": 1}, "test", "")
	assert.ErrorContains(t, err, `no model "nope"`)
	_, err = ed.Set("iris", map[string]float64{"v1": 0, "v2": 0, "v3": 0}, "test", "")
	assert.ErrorContains(t, err, "models[0].versions (line 15): at least one version must have weight > 0")
	h, err := ed.History("iris")
	require.NoError(t, err)
	assert.Empty(t, h, "refused edits are not journaled")
}

func TestRollbackIsExactAndWalksBack(t *testing.T) {
	path, original := commentedConfig(t)
	ed := &WeightEditor{Path: path}
	_, err := ed.Rollback("iris", "test")
	require.ErrorIs(t, err, ErrNoHistory)

	_, err = ed.Set("iris", map[string]float64{"v1": 66.6, "v2": 33.4}, "first", "")
	require.NoError(t, err)
	afterFirst, _ := os.ReadFile(path)
	_, err = ed.Promote("iris", "v1", "second")
	require.NoError(t, err)

	ch, err := ed.Rollback("iris", "rb1")
	require.NoError(t, err)
	assert.Equal(t, []VersionWeight{{"v1", 66.6}, {"v2", 33.4}, {"v3", 0}}, ch.After)
	got, _ := os.ReadFile(path)
	assert.Equal(t, string(afterFirst), string(got), "first rollback restores the bytes after the first set")

	_, err = ed.Rollback("iris", "rb2")
	require.NoError(t, err)
	got, _ = os.ReadFile(path)
	assert.Equal(t, original, string(got), "second rollback restores the original bytes")
	_, err = ed.Rollback("iris", "rb3")
	require.ErrorIs(t, err, ErrNoHistory)

	hist, err := ed.History("iris")
	require.NoError(t, err)
	require.Len(t, hist, 4)
	assert.Equal(t, []string{"first", "second", "rb1", "rb2"}, []string{hist[0].Who, hist[1].Who, hist[2].Who, hist[3].Who})
	assert.Equal(t, hist[1].Seq, hist[2].Undoes)
	assert.Equal(t, hist[0].Seq, hist[3].Undoes)
	assert.Equal(t, filepath.Join(filepath.Dir(path), "state", JournalName), mustJournalPath(t, ed))
}

func mustJournalPath(t *testing.T, ed *WeightEditor) string {
	p, err := ed.JournalPath()
	require.NoError(t, err)
	return p
}

func TestRollbackRefusesAfterAHandEdit(t *testing.T) {
	path, _ := commentedConfig(t)
	ed := &WeightEditor{Path: path}
	_, err := ed.Set("iris", map[string]float64{"v1": 50, "v2": 50}, "test", "")
	require.NoError(t, err)
	data, _ := os.ReadFile(path)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), "weight: 50 ", "weight: 40 ", 1)), 0o640))
	_, err = ed.Rollback("iris", "test")
	assert.ErrorContains(t, err, "edited since")
}

func TestJournalBesideTheConfigWithoutStateDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	data, err := os.ReadFile("minimal.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	ed := &WeightEditor{Path: path}
	_, err = ed.Set("iris", map[string]float64{"v1": 1}, "test", "")
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, ".vane.yaml.weights.jsonl"))
}

func TestSetThroughASymlinkKeepsTheLink(t *testing.T) {
	path, _ := commentedConfig(t)
	link := filepath.Join(t.TempDir(), "link.yaml")
	require.NoError(t, os.Symlink(path, link))
	_, err := (&WeightEditor{Path: link}).Set("iris", map[string]float64{"v2": 11}, "test", "")
	require.NoError(t, err)
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink)
	cfg, _, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, 11.0, cfg.Models[0].Versions[1].Weight)
}

func TestReadOnlyDirectoryNamesTheConfigMapCase(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes read-only directories")
	}
	path, _ := commentedConfig(t)
	dir := filepath.Dir(path)
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	_, err := (&WeightEditor{Path: path}).Set("iris", map[string]float64{"v2": 11}, "test", "")
	require.Error(t, err)
	// A permission error, not EROFS: the ConfigMap text is for EROFS; the
	// file must be untouched either way.
	cfg, _, lerr := Load(path)
	require.NoError(t, lerr)
	assert.Equal(t, 10.0, cfg.Models[0].Versions[1].Weight)
}

func TestRefusesAliasedWeights(t *testing.T) {
	text := "models:\n  - name: m\n    match: {path_prefix: /}\n    versions:\n      - name: a\n        weight: &w 5\n        endpoints: [\"http://127.0.0.1:1\"]\n      - name: b\n        weight: *w\n        endpoints: [\"http://127.0.0.1:2\"]\n"
	_, err := Parse([]byte(text))
	require.NoError(t, err)
	_, err = SpliceWeights([]byte(text), 0, map[string]float64{"b": 1})
	assert.ErrorContains(t, err, "models[0].versions[1].weight (line 9): not a plain number")
	_, err = SpliceWeights([]byte(text), 0, map[string]float64{"a": 1})
	assert.ErrorContains(t, err, "models[0].versions[0].weight (line 6)")
}

// TestConcurrentSetsNeverCorrupt runs many sets at once, from goroutines
// and from other processes (this test binary re-run as a helper), and
// checks that the file is valid with one of the written weight pairs and
// that the journal holds every change as one whole line, each change's
// before equal to the previous one's after.
func TestConcurrentSetsNeverCorrupt(t *testing.T) {
	path, _ := commentedConfig(t)
	const goroutines, perG, procs, perProc = 4, 10, 2, 10
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perG+procs)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ed := &WeightEditor{Path: path}
			for i := range perG {
				w := float64(g*100 + i + 1)
				if _, err := ed.Set("iris", map[string]float64{"v1": w, "v2": 1000 - w}, fmt.Sprintf("g%d", g), ""); err != nil {
					errs <- err
				}
			}
		}()
	}
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSetter$", "-test.count=1")
			cmd.Env = append(os.Environ(), "VANE_HELPER_CONFIG="+path, fmt.Sprintf("VANE_HELPER_ID=%d", p), fmt.Sprintf("VANE_HELPER_N=%d", perProc))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("helper %d: %v: %s", p, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cfg, _, err := Load(path)
	require.NoError(t, err, "the file stays a valid config")
	ed := &WeightEditor{Path: path}
	hist, err := ed.History("iris")
	require.NoError(t, err, "every journal line parses")
	require.Len(t, hist, goroutines*perG+procs*perProc)
	for i := 1; i < len(hist); i++ {
		assert.Equal(t, hist[i-1].After, hist[i].Before, "entry %d starts where %d ended", i, i-1)
		assert.Equal(t, hist[i-1].Seq+1, hist[i].Seq)
	}
	assert.Equal(t, hist[len(hist)-1].After, WeightsOf(cfg)[0].Versions, "the file holds the last journaled weights")
}

// TestHelperSetter is the other process of TestConcurrentSetsNeverCorrupt;
// it does nothing unless run by it.
func TestHelperSetter(t *testing.T) {
	path := os.Getenv("VANE_HELPER_CONFIG")
	if path == "" {
		t.Skip("helper process only")
	}
	var id, n int
	_, _ = fmt.Sscan(os.Getenv("VANE_HELPER_ID"), &id)
	_, _ = fmt.Sscan(os.Getenv("VANE_HELPER_N"), &n)
	ed := &WeightEditor{Path: path}
	for i := range n {
		w := float64(500 + id*100 + i + 1)
		_, err := ed.Set("iris", map[string]float64{"v1": w, "v2": 1000 - w}, fmt.Sprintf("p%d", id), "")
		require.NoError(t, err)
	}
}

func TestJournalIgnoresATornLastLine(t *testing.T) {
	path, _ := commentedConfig(t)
	ed := &WeightEditor{Path: path}
	_, err := ed.Set("iris", map[string]float64{"v1": 1}, "test", "")
	require.NoError(t, err)
	jp := mustJournalPath(t, ed)
	f, err := os.OpenFile(jp, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":2,"who":"cra`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	hist, err := ed.History("iris")
	require.NoError(t, err)
	assert.Len(t, hist, 1)

	require.NoError(t, os.WriteFile(jp, []byte("garbage\n{}\n"), 0o644))
	_, err = ed.History("iris")
	assert.ErrorContains(t, err, "line 1")
}

func TestRelativeStateDirIsFromTheConfigsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	data, err := os.ReadFile("minimal.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append([]byte("state_dir: state\n"), data...), 0o600))
	ed := &WeightEditor{Path: path}
	_, err = ed.Set("iris", map[string]float64{"v1": 1}, "test", "")
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "state", JournalName))
}

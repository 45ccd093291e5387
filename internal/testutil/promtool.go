package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Promtool returns the path of the promtool binary. Without promtool on
// PATH it skips the test, except when CI is set to any non-empty value:
// there it fails, because .ci/run installs Debian's prometheus package
// and a skip would hide a test that never ran.
func Promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed; .ci/run installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

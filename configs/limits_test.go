package configs

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimitsKeys(t *testing.T) {
	cfg := mustParse(t, "trusted_proxies: [\"10.0.0.0/8\", \"192.168.1.7\", \"::ffff:127.0.0.1\"]\n"+
		strings.Replace(minimalYAML, "    versions:", "    limits: {max_response_bytes: 1024}\n    versions:", 1))
	assert.Equal(t, 1024, cfg.Models[0].Limits.MaxResponseBytes)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("127.0.0.1/32")}, TrustedProxies(cfg))
}

func TestLimitsRejected(t *testing.T) {
	for _, tc := range []struct{ yaml, path, msg string }{
		{"trusted_proxies: [\"10.0.0.0/8\", \"not-a-net\"]\n" + minimalYAML, "trusted_proxies[1]", "must be a CIDR"},
		{strings.Replace(minimalYAML, "    versions:", "    limits: {max_response_bytes: 0}\n    versions:", 1),
			"models[0].limits.max_response_bytes", "must be >= 1, got 0"},
	} {
		_, err := Parse([]byte(tc.yaml))
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.path)
		assert.Contains(t, err.Error(), tc.msg)
	}
}

// A config beyond the supported scale is refused with the limit named.
func TestScaleRejected(t *testing.T) {
	var b strings.Builder
	b.WriteString("models:\n  - name: big\n    match: {path_prefix: /}\n    versions:\n")
	for i := range MaxVersionsPerModel + 1 {
		fmt.Fprintf(&b, "      - {name: v%d, endpoints: [\"http://127.0.0.1:%d\"]}\n", i, 1+i%60000)
	}
	_, err := Parse([]byte(b.String()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "models[0].versions")
	assert.Contains(t, err.Error(), fmt.Sprintf("at most %d per model", MaxVersionsPerModel))
}

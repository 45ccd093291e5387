package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestShadowRules(t *testing.T) {
	shadow := "        weight: 10\n        shadow: true"
	runRules(t, []ruleCase{
		{"only shadows", []string{"weight: 90", "weight: 90\n        shadow: true", "        weight: 10", shadow, "h2c://127.0.0.1:8503", "http://127.0.0.1:8503"},
			"models[0].versions", "    versions:", 1, "at least one version must have weight > 0", 2}, // and: at least one version must not be a shadow
		{"shadow weight does not count", []string{"weight: 90", "weight: 0", "        weight: 10", shadow, "h2c://127.0.0.1:8503", "http://127.0.0.1:8503"},
			"models[0].versions", "    versions:", 1, "at least one version must have weight > 0 (shadows' weights do not count)", 0},
		{"shadow as fallback", []string{"        weight: 10", shadow, "on_unhealthy: redistribute", "on_unhealthy: fallback\n      fallback: v2",
			"h2c://127.0.0.1:8503", "http://127.0.0.1:8503"},
			"models[0].routing.fallback", "fallback: v2", 1, `must not name a shadow version ("v2"`, 0},
		{"shadow over h2c", []string{"        weight: 10", shadow},
			"models[0].versions[1].endpoints[1]", "h2c://", 1, "must be http://", 0},
		{"shadow_rate above 1", []string{"on_unhealthy: redistribute", "on_unhealthy: redistribute\n      shadow_rate: 1.5"},
			"models[0].routing.shadow_rate", "shadow_rate", 1, "must be >= 0 and <= 1", 0},
		{"shadow_timeout zero", []string{"on_unhealthy: redistribute", "on_unhealthy: redistribute\n      shadow_timeout: 0s"},
			"models[0].routing.shadow_timeout", "shadow_timeout", 1, "must be > 0", 0},
		{"queue size zero", []string{"shutdown:", "shadowing:\n  queue_size: 0\nshutdown:"},
			"shadowing.queue_size", "queue_size", 1, "must be >= 1", 0},
		{"feedback ttl negative", []string{"shutdown:", "feedback:\n  ttl: -1s\nshutdown:"},
			"feedback.ttl", "ttl:", 1, "must be > 0", 0},
		{"feedback entries zero", []string{"shutdown:", "feedback:\n  max_entries: 0\nshutdown:"},
			"feedback.max_entries", "max_entries", 1, "must be >= 1", 0},
	})
}

func TestShadowDefaults(t *testing.T) {
	c := mustParse(t, edit(t, "        weight: 10", "        weight: 10\n        shadow: true",
		"h2c://127.0.0.1:8503", "http://127.0.0.1:8503", "timeout: 30s", "timeout: 7s"))
	assert.Equal(t, []int{1}, c.Models[0].Shadows())
	assert.Equal(t, 1.0, c.Models[0].Routing.ShadowRate)
	assert.Equal(t, 7*time.Second, c.Models[0].Routing.ShadowTimeout, "the model's timeout")
	assert.Equal(t, Shadowing{QueueSize: 1024, Concurrency: 16}, c.Shadowing)
	assert.Equal(t, Feedback{MaxEntries: 100000, TTL: time.Hour}, c.Feedback)
	assert.Equal(t, 1, c.Models[0].VersionIndex("v2"))
	assert.Equal(t, -1, c.Models[0].VersionIndex("v9"))
}

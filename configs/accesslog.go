package configs

// AccessLog configures the optional access log: one log record per
// request (sampled), written to vane's log (so -log-format json makes it
// one JSON object per line).
type AccessLog struct {
	// Enabled turns it on. Default false.
	Enabled bool `yaml:"enabled"`
	// SampleRate in [0,1] is the share of requests logged. Default 1.0
	// when the key is absent.
	SampleRate float64 `yaml:"sample_rate"`
}

// DefaultAccessLogSampleRate is access_log.sample_rate when absent.
const DefaultAccessLogSampleRate = 1.0

func accessLogDefaults(c *Config, idx nodeIndex) {
	setDefault(&c.AccessLog.SampleRate, idx, "access_log.sample_rate", DefaultAccessLogSampleRate)
}

func (v *validator) accessLog(c *Config) {
	v.unitRatio("access_log.sample_rate", c.AccessLog.SampleRate)
}

package configs

import "testing"

// grpcModel turns models[0] of baseYAML into a gRPC model with h2c
// endpoints, keeping its monitor section.
func grpcModel(monitor ...string) []string {
	edits := []string{
		"protocol: kserve-v1", "protocol: grpc",
		`endpoints: ["http://127.0.0.1:8501"]`, `endpoints: ["h2c://127.0.0.1:8501"]`,
		`endpoints: ["http://127.0.0.1:8502", "h2c://127.0.0.1:8503"]`, `endpoints: ["h2c://127.0.0.1:8502"]`,
	}
	return append(edits, monitor...)
}

// A monitor section on a gRPC model is refused, naming the section and
// saying why, rather than validated and then never used.
func TestGRPCMonitorRefused(t *testing.T) {
	runRules(t, []ruleCase{
		{"grpc with monitor", grpcModel(), "models[0].monitor", "    monitor:", 1,
			"is not supported for protocol grpc yet: vane does not sample gRPC calls", 0},
		{"grpc with an empty monitor", grpcModel("    monitor:\n      sample_rate: 1.0\n      reference:\n        warmup: 100\n      features: [a, b]", "    monitor: {}"),
			"models[0].monitor", "monitor: {}", 1, "remove it", 0},
	})
}

// Without a monitor section (or with a null one) a gRPC model is valid.
func TestGRPCWithoutMonitor(t *testing.T) {
	mustParse(t, edit(t, grpcModel("    monitor:\n      sample_rate: 1.0\n      reference:\n        warmup: 100\n      features: [a, b]\n", "")...))
	mustParse(t, edit(t, grpcModel("    monitor:\n      sample_rate: 1.0\n      reference:\n        warmup: 100\n      features: [a, b]", "    monitor: ~")...))
}

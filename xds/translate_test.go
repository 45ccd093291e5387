package xds

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vaneproxy/vane/configs"
)

const roundTripFile = `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
models:
  - name: iris
    match: {path_prefix: /v1/models/iris, headers: {x-tenant: a}}
    protocol: kserve-v1
    timeout: 7s
    routing: {sticky_header: x-user-id, on_unhealthy: fallback, fallback: v1}
    versions:
      - {name: v1, weight: 66.5, endpoints: ["http://127.0.0.1:8501"]}
      - {name: v2, weight: 33.5, endpoints: ["http://127.0.0.1:8502", "h2c://[::1]:8503"]}
    health: {interval: 3s, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 4}
    circuit_breaker: {failure_ratio: 0.33, min_requests: 7, window: 11s, open_for: 4s, half_open_requests: 2, failure_statuses: [500, 503]}
    retry: {attempts: 3, budget_ratio: 0.15, min_concurrent: 1, on_statuses: [503]}
    limits: {endpoint_concurrency: 8}
    monitor:
      sample_rate: 0.5
      window: 200
      reference: {version: v1}
      features: [a, b]
      thresholds: {psi: 0.3}
  - name: chat
    match: {host: chat.internal}
    protocol: grpc
    versions:
      - {name: blue, weight: 1, endpoints: ["h2c://127.0.0.1:9000"]}
      - {name: green, weight: 0, endpoints: ["h2c://127.0.0.1:9001"]}
`

func TestRoundTripKeepsEveryModelSetting(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	require.NoError(t, res.Validate())
	assert.Len(t, res.Routes, 3, "one per model and the HTTP listener's")
	assert.Len(t, res.Listeners, 3, "an API listener per model and the HTTP listener")
	assert.Len(t, res.Clusters, 4)
	assert.Len(t, res.Endpoints, 4)

	models, err := FromEnvoy(res)
	require.NoError(t, err)
	back, _, err := Compose([]byte(roundTripFile), models)
	require.NoError(t, err)
	// FromEnvoy lists models by name; the file has iris first.
	require.Len(t, back.Models, 2)
	byName := map[string]configs.Model{}
	for _, m := range back.Models {
		byName[m.Name] = m
	}
	for _, m := range cfg.Models {
		assert.Equal(t, m, byName[m.Name], "model %s", m.Name)
	}
}

func TestEnvoyFieldsCarryTheMapping(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	var iris = res.Routes[1]
	require.Equal(t, "iris", iris.Name)
	action := iris.VirtualHosts[0].Routes[0].GetRoute()
	assert.Equal(t, int64(7), action.Timeout.Seconds)
	assert.Equal(t, "x-user-id", action.HashPolicy[0].GetHeader().HeaderName)
	assert.True(t, action.GetWeightedClusters().GetUseHashPolicy().GetValue())
	w := action.GetWeightedClusters().Clusters
	assert.Equal(t, "iris/v1", w[0].Name)
	assert.Equal(t, uint32(665000), w[0].Weight.Value, "fractional weights scale to a total of 1e6")
	assert.Equal(t, uint32(2), action.RetryPolicy.NumRetries.Value)

	c := res.Clusters[2]
	require.Equal(t, "iris/v1", c.Name)
	assert.Equal(t, "/v1/models/iris", c.HealthChecks[0].GetHttpHealthCheck().Path)
	assert.Equal(t, uint32(33), c.OutlierDetection.FailurePercentageThreshold.Value)
	assert.Equal(t, uint32(8), c.CircuitBreakers.Thresholds[0].MaxRequests.Value)
	assert.Equal(t, "iris", c.Metadata.FilterMetadata[MetadataKey].AsMap()["model"])
	chat := res.Routes[0].VirtualHosts[0].Routes[0].Metadata.FilterMetadata[MetadataKey].AsMap()
	assert.NotContains(t, chat, "monitor", "settings at their defaults are left out of io.vane")
	assert.Contains(t, chat, "protocol", "grpc is not the default protocol")
	blue := res.Clusters[0]
	require.Equal(t, "chat/blue", blue.Name)
	assert.NotNil(t, blue.HealthChecks[0].GetGrpcHealthCheck(), "grpc models are probed with the gRPC health service")
	assert.Contains(t, blue.TypedExtensionProtocolOptions, protocolOptionsKey, "h2c endpoints speak HTTP/2 upstream")
}

// Resources from another xDS server, without vane's metadata, translate
// by Envoy's own fields and get the file defaults for the rest.
func TestPlainEnvoyResourcesTranslate(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models[:1])
	require.NoError(t, err)
	for _, rc := range res.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				r.Metadata = nil
			}
		}
	}
	models, err := FromEnvoy(res)
	require.NoError(t, err)
	back, _, err := Compose([]byte("admin: {listen: 127.0.0.1:0}\n"), models)
	require.NoError(t, err)
	m := back.Models[0]
	assert.Equal(t, 665000.0, m.Versions[0].Weight)
	assert.Equal(t, 335000.0, m.Versions[1].Weight)
	assert.Equal(t, "x-user-id", m.Routing.StickyHeader)
	assert.Equal(t, 3, m.Retry.Attempts)
	assert.Equal(t, configs.DefaultProtocol, m.Protocol, "what only the metadata says falls back to the default")
	assert.Equal(t, []string{"http://127.0.0.1:8502", "h2c://[::1]:8503"}, m.Versions[1].Endpoints)
}

func TestMissingClusterIsIncompleteNotInvalid(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	res.Endpoints = res.Endpoints[1:]
	_, err = FromEnvoy(res)
	assert.ErrorIs(t, err, ErrIncomplete)
}

func TestComposeRejectsLikeAFile(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	models, err := FromEnvoy(res)
	require.NoError(t, err)
	models[1]["versions"].([]any)[0].(map[string]any)["weight"] = -1
	_, _, err = Compose([]byte(roundTripFile), models)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "models[1].versions[0].weight")
	assert.Contains(t, err.Error(), "must be >= 0, got -1")
}

func TestValidateCatchesInvalidEnvoyConfig(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	res.Clusters[0].ConnectTimeout = durationpb.New(-1)
	assert.ErrorContains(t, res.Validate(), "chat/blue")
}

// A shadow version travels as a request mirror (Envoy copies to it and
// never answers from it) and comes back as a shadow; the rest of the
// round-2 model keys (rollout, limits, shadow rate) travel in io.vane.
func TestRoundTripKeepsShadowsAndRollouts(t *testing.T) {
	const file = `
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    protocol: kserve-v1
    routing: {shadow_rate: 0.25}
    limits: {max_response_bytes: 1048576}
    versions:
      - name: v1
        weight: 90
        endpoints: ["http://127.0.0.1:8501"]
      - name: v2
        weight: 10
        endpoints: ["http://127.0.0.1:8502"]
      - name: v3
        shadow: true
        endpoints: ["http://127.0.0.1:8503"]
    rollout:
      candidate: v2
      steps: [10, 50, 100]
      gates: {min_requests: 20, min_shadow_agreement: 0.9}
`
	cfg, err := configs.Parse([]byte(file))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	require.NoError(t, res.Validate())
	var action *route.RouteAction
	for _, rc := range res.Routes {
		if rc.Name == "iris" {
			action = rc.VirtualHosts[0].Routes[0].GetRoute()
		}
	}
	require.NotNil(t, action)
	w := action.GetWeightedClusters().Clusters
	require.Len(t, w, 2, "the shadow takes no part in the split")
	require.Len(t, action.RequestMirrorPolicies, 1)
	assert.Equal(t, "iris/v3", action.RequestMirrorPolicies[0].Cluster)
	assert.Equal(t, uint32(250000), action.RequestMirrorPolicies[0].RuntimeFraction.DefaultValue.Numerator)

	models, err := FromEnvoy(res)
	require.NoError(t, err)
	back, _, err := Compose([]byte(file), models)
	require.NoError(t, err)
	require.Len(t, back.Models, 1)
	assert.Equal(t, cfg.Models[0], back.Models[0])
}

package xds

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/vaneproxy/vane/configs"
)

// Names and constants of the mapping.
const (
	// MetadataKey is the filter_metadata namespace of vane's own settings.
	// Envoy ignores namespaces it does not know.
	MetadataKey = "io.vane"
	// HTTPListenerName names the HTTP listener for plain Envoys and its
	// combined RouteConfiguration. The colon keeps it apart from model
	// names, which cannot hold one.
	HTTPListenerName = "vane:http"
	// HTTPListenerPort is the port of that listener (Envoy's customary
	// 10000), on every interface.
	HTTPListenerPort = 10000
	// ConnectTimeout is every Cluster's connect_timeout: vane has no
	// such setting, and Envoy's default (5s) is kept explicit.
	ConnectTimeout = 5 * time.Second
	// protocolOptionsKey names HttpProtocolOptions in a Cluster's
	// typed_extension_protocol_options.
	protocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	// weightScale is the integer total that fractional weights are scaled
	// to for weighted_clusters (the exact values travel in io.vane).
	weightScale = 1_000_000
)

// Resources are one group's Envoy resources, by type, each list sorted by
// name.
type Resources struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

// ClusterName names the Cluster (and ClusterLoadAssignment) of a version.
func ClusterName(model, version string) string { return model + "/" + version }

// ToEnvoy translates models (complete, as Parse returns them) into Envoy
// resources. Every resource passes its ValidateAll.
func ToEnvoy(models []configs.Model) (*Resources, error) {
	r := &Resources{}
	for i := range models {
		m := &models[i]
		rt, err := modelRoute(m)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		r.Routes = append(r.Routes, &route.RouteConfiguration{Name: m.Name,
			VirtualHosts: []*route.VirtualHost{{Name: m.Name, Domains: []string{"*"}, Routes: []*route.Route{rt}}}})
		ln, err := apiListener(m.Name)
		if err != nil {
			return nil, err
		}
		r.Listeners = append(r.Listeners, ln)
		for j := range m.Versions {
			c, cla, err := versionCluster(m, &m.Versions[j])
			if err != nil {
				return nil, fmt.Errorf("model %s version %s: %w", m.Name, m.Versions[j].Name, err)
			}
			r.Clusters = append(r.Clusters, c)
			r.Endpoints = append(r.Endpoints, cla)
		}
	}
	if len(models) > 0 {
		rc, ln, err := httpListener(models)
		if err != nil {
			return nil, err
		}
		r.Routes = append(r.Routes, rc)
		r.Listeners = append(r.Listeners, ln)
	}
	r.sort()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Resources) sort() {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].Name < r.Listeners[j].Name })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].Name < r.Routes[j].Name })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].Name < r.Clusters[j].Name })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].ClusterName < r.Endpoints[j].ClusterName })
}

// validatable is what protoc-gen-validate generates.
type validatable interface{ ValidateAll() error }

// Validate runs ValidateAll on every resource and on the
// HttpConnectionManagers inside the listeners.
func (r *Resources) Validate() error {
	check := func(kind, name string, v validatable) error {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s %q is not valid Envoy configuration: %w", kind, name, err)
		}
		return nil
	}
	for _, l := range r.Listeners {
		if err := check("listener", l.Name, l); err != nil {
			return err
		}
		for _, a := range listenerHCMs(l) {
			m := &hcm.HttpConnectionManager{}
			if err := a.UnmarshalTo(m); err != nil {
				return fmt.Errorf("listener %q: %w", l.Name, err)
			}
			if err := check("listener's http_connection_manager", l.Name, m); err != nil {
				return err
			}
		}
	}
	for _, x := range r.Routes {
		if err := check("route configuration", x.Name, x); err != nil {
			return err
		}
	}
	for _, x := range r.Clusters {
		if err := check("cluster", x.Name, x); err != nil {
			return err
		}
	}
	for _, x := range r.Endpoints {
		if err := check("cluster load assignment", x.ClusterName, x); err != nil {
			return err
		}
	}
	return nil
}

// listenerHCMs returns the HttpConnectionManager configs of a listener.
func listenerHCMs(l *listener.Listener) []*anypb.Any {
	var out []*anypb.Any
	if a := l.GetApiListener().GetApiListener(); a != nil {
		out = append(out, a)
	}
	for _, fc := range l.FilterChains {
		for _, f := range fc.Filters {
			if a := f.GetTypedConfig(); a != nil && f.Name == wellknown.HTTPConnectionManager {
				out = append(out, a)
			}
		}
	}
	return out
}

// adsSource is a ConfigSource that says "over the same ADS stream".
func adsSource() *core.ConfigSource {
	return &core.ConfigSource{ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
}

// connectionManager is an HCM taking its routes over ADS, with the router.
func connectionManager(statPrefix, routeName string) (*anypb.Any, error) {
	rtr, err := anypb.New(&router.Router{})
	if err != nil {
		return nil, err
	}
	return anypb.New(&hcm.HttpConnectionManager{
		CodecType:  hcm.HttpConnectionManager_AUTO,
		StatPrefix: statPrefix,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsSource(), RouteConfigName: routeName}},
		HttpFilters: []*hcm.HttpFilter{{Name: wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: rtr}}},
	})
}

// apiListener is the listener a proxyless gRPC client asks for when it
// dials xds:///name.
func apiListener(name string) (*listener.Listener, error) {
	a, err := connectionManager(name, name)
	if err != nil {
		return nil, err
	}
	return &listener.Listener{Name: name, ApiListener: &listener.ApiListener{ApiListener: a}}, nil
}

// httpListener is the listener and combined routes a plain Envoy serves
// every model of the group on, most specific match first as vane orders
// them: longest path prefix, then the most headers.
func httpListener(models []configs.Model) (*route.RouteConfiguration, *listener.Listener, error) {
	hosts := map[string][]*route.Route{}
	for i := range models {
		rt, err := modelRoute(&models[i])
		if err != nil {
			return nil, nil, err
		}
		h := models[i].Match.Host
		hosts[h] = append(hosts[h], rt)
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	rc := &route.RouteConfiguration{Name: HTTPListenerName}
	for _, h := range names {
		routes := hosts[h]
		sort.SliceStable(routes, func(i, j int) bool {
			pi, pj := routes[i].Match.GetPrefix(), routes[j].Match.GetPrefix()
			if len(pi) != len(pj) {
				return len(pi) > len(pj)
			}
			return len(routes[i].Match.Headers) > len(routes[j].Match.Headers)
		})
		vh := &route.VirtualHost{Name: "any", Domains: []string{"*"}, Routes: routes}
		if h != "" {
			vh = &route.VirtualHost{Name: h, Domains: []string{h, h + ":*"}, Routes: routes}
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	a, err := connectionManager("vane", HTTPListenerName)
	if err != nil {
		return nil, nil, err
	}
	ln := &listener.Listener{
		Name: HTTPListenerName,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: HTTPListenerPort}}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: wellknown.HTTPConnectionManager, ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}}}}},
	}
	return rc, ln, nil
}

// modelRoute is the one route of a model.
func modelRoute(m *configs.Model) (*route.Route, error) {
	prefix := m.Match.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	match := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: prefix}}
	keys := make([]string, 0, len(m.Match.Headers))
	for k := range m.Match.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		match.Headers = append(match.Headers, &route.HeaderMatcher{Name: k,
			HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
				MatchPattern: &matcher.StringMatcher_Exact{Exact: m.Match.Headers[k]}}}})
	}
	// Shadow versions never answer: Envoy mirrors to them
	// (request_mirror_policies, at routing.shadow_rate) and they take no
	// part in the weighted split.
	var served []configs.Version
	var mirrors []*route.RouteAction_RequestMirrorPolicy
	for _, v := range m.Versions {
		if v.Shadow {
			mirrors = append(mirrors, &route.RouteAction_RequestMirrorPolicy{Cluster: ClusterName(m.Name, v.Name),
				RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
					Numerator: uint32(math.Round(m.Routing.ShadowRate * 1e6)), Denominator: typev3.FractionalPercent_MILLION}}})
			continue
		}
		served = append(served, v)
	}
	weights := envoyWeights(served)
	wc := &route.WeightedCluster{}
	for j, v := range served {
		wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{
			Name: ClusterName(m.Name, v.Name), Weight: wrapperspb.UInt32(weights[j])})
	}
	action := &route.RouteAction{
		ClusterSpecifier:      &route.RouteAction_WeightedClusters{WeightedClusters: wc},
		Timeout:               durationpb.New(m.Timeout),
		RequestMirrorPolicies: mirrors,
		RetryPolicy: &route.RetryPolicy{
			RetryOn:              retryOn(m.Protocol),
			NumRetries:           wrapperspb.UInt32(uint32(max(m.Retry.Attempts-1, 0))),
			RetriableStatusCodes: toUint32s(m.Retry.OnStatuses),
		},
	}
	if m.Routing.StickyHeader != "" {
		action.HashPolicy = []*route.RouteAction_HashPolicy{{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{
			Header: &route.RouteAction_HashPolicy_Header{HeaderName: m.Routing.StickyHeader}}}}
		wc.RandomValueSpecifier = &route.WeightedCluster_UseHashPolicy{UseHashPolicy: wrapperspb.Bool(true)}
	}
	meta, err := modelMetadata(m)
	if err != nil {
		return nil, err
	}
	return &route.Route{Name: m.Name, Match: match, Metadata: meta,
		Action: &route.Route_Route{Route: action}}, nil
}

// retryOn is the retry_on of a model: transport failures and the
// configured statuses, plus gRPC's unavailable for grpc models.
func retryOn(p configs.Protocol) string {
	if p == configs.ProtocolGRPC {
		return "connect-failure,reset,retriable-status-codes,unavailable"
	}
	return "connect-failure,reset,retriable-status-codes"
}

// envoyWeights maps vane's relative weights onto weighted_clusters'
// integers: whole weights as they are, others scaled to a total of
// weightScale.
func envoyWeights(vs []configs.Version) []uint32 {
	out := make([]uint32, len(vs))
	whole, sum := true, 0.0
	for _, v := range vs {
		sum += v.Weight
		whole = whole && v.Weight == math.Trunc(v.Weight)
	}
	for i, v := range vs {
		if whole && sum <= math.MaxInt32 {
			out[i] = uint32(v.Weight)
		} else {
			out[i] = uint32(math.Round(v.Weight / sum * weightScale))
		}
	}
	return out
}

// modelMetadata carries the model's settings in vane's own terms, so
// that a sidecar gets exactly what the control plane's file says (Envoy's
// fields hold approximations of some: integer weights, percentages).
func modelMetadata(m *configs.Model) (*core.Metadata, error) {
	mm, err := toMap(m)
	if err != nil {
		return nil, err
	}
	delete(mm, "versions")
	// What equals the default is left out: a parser fills it in again,
	// and every client decodes this on every update.
	if def, err := defaultModel(m); err == nil {
		pruneEqual(mm, def)
	}
	pruneEmptyMaps(mm)
	// The reference sets exactly one source; the others' zero values
	// would read as set. Features have no default: none is an empty list.
	if mon, ok := mm["monitor"].(map[string]any); ok {
		if f, ok := mon["features"].([]any); ok && len(f) == 0 {
			delete(mon, "features")
		}
		if ref, ok := mon["reference"].(map[string]any); ok {
			for k, v := range ref {
				if v == 0 || v == "" {
					delete(ref, k)
				}
			}
		}
	}
	weights := map[string]any{}
	for _, v := range m.Versions {
		weights[v.Name] = v.Weight
	}
	mm["weights"] = weights
	s, err := structpb.NewStruct(mm)
	if err != nil {
		return nil, fmt.Errorf("encoding io.vane metadata: %w", err)
	}
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataKey: s}}, nil
}

// defaultModel is the model with m's name, match, protocol and versions
// and every other key at its default, as a generic map without those four.
func defaultModel(m *configs.Model) (map[string]any, error) {
	match, err := toMap(m.Match)
	if err != nil {
		return nil, err
	}
	pruneEmptyMaps(match)
	versions := make([]any, len(m.Versions))
	for i, v := range m.Versions {
		versions[i] = map[string]any{"name": v.Name, "endpoints": v.Endpoints}
	}
	doc := map[string]any{"models": []any{map[string]any{"name": m.Name, "match": match,
		"protocol": string(m.Protocol), "versions": versions}}}
	cfg, err := configs.ParseNode(toNode(doc))
	if err != nil {
		return nil, err
	}
	def, err := toMap(cfg.Models[0])
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"name", "match", "protocol", "versions"} {
		delete(def, k)
	}
	return def, nil
}

// pruneEqual deletes from m the leaves equal to def's.
func pruneEqual(m, def map[string]any) {
	for k, v := range m {
		d, ok := def[k]
		if !ok {
			continue
		}
		sub, isMap := v.(map[string]any)
		dsub, defMap := d.(map[string]any)
		switch {
		case isMap && defMap:
			pruneEqual(sub, dsub)
		case reflect.DeepEqual(v, d):
			delete(m, k)
		}
	}
}

// pruneEmptyMaps drops empty mappings (no headers, no paths), which mean
// the same as absent ones; empty lists are kept, since some mean "none"
// where absence means the default.
func pruneEmptyMaps(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			pruneEmptyMaps(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}

// toMap renders v as YAML and reads it back as a generic map, the shape
// a config file has.
func toMap(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// versionCluster is the EDS Cluster of a version and its assignment.
func versionCluster(m *configs.Model, v *configs.Version) (*cluster.Cluster, *endpoint.ClusterLoadAssignment, error) {
	name := ClusterName(m.Name, v.Name)
	h := m.Health
	hc := &core.HealthCheck{
		Timeout:            durationpb.New(h.Timeout),
		Interval:           durationpb.New(h.Interval),
		HealthyThreshold:   wrapperspb.UInt32(uint32(h.HealthyThreshold)),
		UnhealthyThreshold: wrapperspb.UInt32(uint32(h.UnhealthyThreshold)),
	}
	if h.Path == "" {
		hc.HealthChecker = &core.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &core.HealthCheck_GrpcHealthCheck{}}
	} else {
		hc.HealthChecker = &core.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &core.HealthCheck_HttpHealthCheck{Path: h.Path}}
	}
	b := m.CircuitBreaker
	threshold := &cluster.CircuitBreakers_Thresholds{
		RetryBudget: &cluster.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: m.Retry.BudgetRatio * 100},
			MinRetryConcurrency: wrapperspb.UInt32(uint32(m.Retry.MinConcurrent)),
		},
	}
	if n := m.Limits.EndpointConcurrency; n > 0 {
		// Envoy's limit is per cluster, vane's per endpoint.
		threshold.MaxRequests = wrapperspb.UInt32(uint32(n * len(v.Endpoints)))
	}
	meta, err := structpb.NewStruct(map[string]any{"model": m.Name, "version": v.Name})
	if err != nil {
		return nil, nil, err
	}
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(ConnectTimeout),
		HealthChecks:         []*core.HealthCheck{hc},
		OutlierDetection: &cluster.OutlierDetection{
			Interval:                       durationpb.New(b.Window),
			BaseEjectionTime:               durationpb.New(b.OpenFor),
			FailurePercentageThreshold:     wrapperspb.UInt32(uint32(math.Round(b.FailureRatio * 100))),
			FailurePercentageRequestVolume: wrapperspb.UInt32(uint32(b.MinRequests)),
			FailurePercentageMinimumHosts:  wrapperspb.UInt32(1),
			EnforcingFailurePercentage:     wrapperspb.UInt32(100),
		},
		CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{threshold}},
		Metadata:        &core.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataKey: meta}},
	}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	var lbs []*endpoint.LbEndpoint
	allH2C := true
	for _, raw := range v.Endpoints {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, nil, err
		}
		port, err := strconv.ParseUint(u.Port(), 10, 32)
		if err != nil {
			return nil, nil, fmt.Errorf("endpoint %q: %w", raw, err)
		}
		allH2C = allH2C && u.Scheme == "h2c"
		em, err := structpb.NewStruct(map[string]any{"scheme": u.Scheme})
		if err != nil {
			return nil, nil, err
		}
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address: u.Hostname(), PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}}}}},
			Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataKey: em}},
		})
	}
	// gRPC ignores a locality without a weight and rejects one without a name.
	cla.Endpoints = []*endpoint.LocalityLbEndpoints{{Locality: &core.Locality{Region: "vane"},
		LbEndpoints: lbs, LoadBalancingWeight: wrapperspb.UInt32(1)}}
	if allH2C {
		opts, err := anypb.New(&upstreamhttp.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &core.Http2ProtocolOptions{}}}}})
		if err != nil {
			return nil, nil, err
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{protocolOptionsKey: opts}
	}
	return c, cla, nil
}

func toUint32s(in []int) []uint32 {
	out := make([]uint32, len(in))
	for i, n := range in {
		out[i] = uint32(n)
	}
	return out
}

// endpointURL renders an endpoint address as a vane endpoint URL.
func endpointURL(scheme, host string, port uint32) string {
	return scheme + "://" + net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

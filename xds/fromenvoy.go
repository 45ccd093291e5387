package xds

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/configs"
)

// ErrIncomplete says that a route names a cluster, or a cluster an
// assignment, that has not arrived yet: the resources are not wrong, only
// not all there (xDS delivers each type on its own).
var ErrIncomplete = errors.New("xds resources incomplete")

// FromEnvoy translates Envoy resources back into models, in the shape of
// a config file's models[] (generic maps, so that Compose gives them to
// the config parser, which fills the defaults and validates them exactly
// as a file). Each RouteConfiguration but HTTPListenerName's is a model:
// one virtual host holding one route to weighted_clusters (or one
// cluster). Envoy's fields give the match, timeout, weights, sticky
// header, retries, health checks and endpoints; the route's io.vane
// metadata, when present, overrides them with vane's exact settings and
// adds what only vane does. A route naming a cluster or assignment that
// is missing gives ErrIncomplete.
func FromEnvoy(r *Resources) ([]map[string]any, error) {
	clusters := map[string]*cluster.Cluster{}
	for _, c := range r.Clusters {
		clusters[c.Name] = c
	}
	clas := map[string]*endpoint.ClusterLoadAssignment{}
	for _, a := range r.Endpoints {
		clas[a.ClusterName] = a
	}
	var out []map[string]any
	routes := append([]*route.RouteConfiguration(nil), r.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Name < routes[j].Name })
	for _, rc := range routes {
		if rc.Name == HTTPListenerName {
			continue
		}
		m, err := modelFromRoute(rc, clusters, clas)
		if err != nil {
			return nil, fmt.Errorf("route configuration %q: %w", rc.Name, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func modelFromRoute(rc *route.RouteConfiguration, clusters map[string]*cluster.Cluster,
	clas map[string]*endpoint.ClusterLoadAssignment) (map[string]any, error) {
	if len(rc.VirtualHosts) != 1 || len(rc.VirtualHosts[0].Routes) != 1 {
		return nil, errors.New("a vane model needs exactly one virtual host holding one route")
	}
	rt := rc.VirtualHosts[0].Routes[0]
	action := rt.GetRoute()
	if action == nil {
		return nil, errors.New("the route must forward (route action), not redirect or answer directly")
	}
	m := map[string]any{"name": rc.Name}
	match := map[string]any{}
	if p := rt.GetMatch().GetPrefix(); p != "" && p != "/" {
		match["path_prefix"] = p
	} else if p == "/" {
		match["path_prefix"] = "/"
	}
	if hs := rt.GetMatch().GetHeaders(); len(hs) > 0 {
		headers := map[string]any{}
		for _, h := range hs {
			headers[h.Name] = h.GetStringMatch().GetExact()
		}
		match["headers"] = headers
	}
	m["match"] = match
	if t := action.GetTimeout(); t != nil {
		m["timeout"] = t.AsDuration().String()
	}
	routing := map[string]any{}
	for _, hp := range action.HashPolicy {
		if h := hp.GetHeader(); h != nil {
			routing["sticky_header"] = h.HeaderName
		}
	}
	m["routing"] = routing
	if rp := action.RetryPolicy; rp != nil {
		retry := map[string]any{}
		if n := rp.GetNumRetries(); n != nil {
			retry["attempts"] = int(n.Value) + 1
		}
		if codes := rp.RetriableStatusCodes; len(codes) > 0 {
			l := make([]any, len(codes))
			for i, c := range codes {
				l[i] = int(c)
			}
			retry["on_statuses"] = l
		}
		m["retry"] = retry
	}

	type target struct {
		cluster string
		weight  uint32
	}
	var targets []target
	switch {
	case action.GetWeightedClusters() != nil:
		for _, cw := range action.GetWeightedClusters().Clusters {
			targets = append(targets, target{cw.Name, cw.GetWeight().GetValue()})
		}
	case action.GetCluster() != "":
		targets = append(targets, target{action.GetCluster(), 1})
	default:
		return nil, errors.New("the route must name a cluster or weighted_clusters")
	}
	var meta map[string]any
	if s := rt.GetMetadata().GetFilterMetadata()[MetadataKey]; s != nil {
		meta = s.AsMap()
	}
	exact, _ := meta["weights"].(map[string]any)
	var versions []any
	for _, t := range targets {
		c, ok := clusters[t.cluster]
		if !ok {
			return nil, fmt.Errorf("%w: cluster %q not received", ErrIncomplete, t.cluster)
		}
		cla, ok := clas[t.cluster]
		if !ok {
			return nil, fmt.Errorf("%w: endpoints of cluster %q not received", ErrIncomplete, t.cluster)
		}
		name := t.cluster
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		if cm := c.GetMetadata().GetFilterMetadata()[MetadataKey]; cm != nil {
			if v, ok := cm.AsMap()["version"].(string); ok {
				name = v
			}
		}
		var weight any = int(t.weight)
		if w, ok := exact[name]; ok {
			weight = w
		}
		versions = append(versions, map[string]any{"name": name, "weight": weight, "endpoints": endpointsOf(c, cla)})
		if _, ok := m["health"]; !ok {
			if h := healthOf(c); h != nil {
				m["health"] = h
			}
		}
	}
	m["versions"] = versions
	delete(meta, "weights")
	merge(m, meta)
	return m, nil
}

// endpointsOf lists a version's endpoint URLs: the scheme from the
// endpoint's io.vane metadata, else h2c when the cluster speaks HTTP/2
// upstream, else http.
func endpointsOf(c *cluster.Cluster, cla *endpoint.ClusterLoadAssignment) []any {
	scheme := "http"
	if _, ok := c.GetTypedExtensionProtocolOptions()[protocolOptionsKey]; ok {
		scheme = "h2c"
	}
	var out []any
	for _, loc := range cla.Endpoints {
		for _, lb := range loc.LbEndpoints {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				continue
			}
			s := scheme
			if em := lb.GetMetadata().GetFilterMetadata()[MetadataKey]; em != nil {
				if v, ok := em.AsMap()["scheme"].(string); ok {
					s = v
				}
			}
			out = append(out, endpointURL(s, sa.Address, sa.GetPortValue()))
		}
	}
	return out
}

// healthOf reads the first health check of a cluster.
func healthOf(c *cluster.Cluster) map[string]any {
	if len(c.HealthChecks) == 0 {
		return nil
	}
	hc := c.HealthChecks[0]
	h := map[string]any{}
	if hc.Interval != nil {
		h["interval"] = hc.Interval.AsDuration().String()
	}
	if hc.Timeout != nil {
		h["timeout"] = hc.Timeout.AsDuration().String()
	}
	if v := hc.HealthyThreshold; v != nil {
		h["healthy_threshold"] = int(v.Value)
	}
	if v := hc.UnhealthyThreshold; v != nil {
		h["unhealthy_threshold"] = int(v.Value)
	}
	if p := hc.GetHttpHealthCheck().GetPath(); p != "" {
		h["path"] = p
	}
	return h
}

// merge copies src over dst, recursing into maps that both hold.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// Compose puts models (as FromEnvoy gives them) into the config file
// base in place of its models, and parses the result with configs.Parse:
// the defaults and every rule of a file apply, and problems name the
// field path (models[0].versions[1].weight). raw is the composed file,
// whose configs.Hash is the config hash; it is what a sidecar persists as
// its last good config.
func Compose(base []byte, models []map[string]any) (*configs.Config, []byte, error) {
	doc := map[string]any{}
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, nil, fmt.Errorf("reading the base config: %w", err)
	}
	list := make([]any, len(models))
	for i, m := range models {
		list[i] = m
	}
	doc["models"] = list
	raw, err := yaml.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("composing the config: %w", err)
	}
	cfg, err := configs.Parse(raw)
	if err != nil {
		return nil, raw, err
	}
	return cfg, raw, nil
}

// ModelsOf reads the models of a composed config file back as generic
// maps, for composing them onto a newer base (a restart that loads the
// last good config persisted by an older run).
func ModelsOf(raw []byte) ([]map[string]any, error) {
	var doc struct {
		Models []map[string]any `yaml:"models"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	return doc.Models, nil
}

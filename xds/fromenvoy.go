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
	out, _, err := fromEnvoy(r, nil)
	return out, err
}

// modelCache remembers the model each route message gave and the cluster
// and assignment messages it read. A sidecar keeps unchanged resources'
// messages across responses (decoded once), so an update that changes one
// route translates one model.
type modelCache map[*route.RouteConfiguration]cachedModel

type cachedModel struct {
	m    map[string]any // read only once cached
	deps []dep
}

// current reports whether the model read the same cluster and assignment
// messages as those given.
func (cm cachedModel) current(clusters map[string]*cluster.Cluster, clas map[string]*endpoint.ClusterLoadAssignment) bool {
	for _, d := range cm.deps {
		if clusters[d.name] != d.c || clas[d.name] != d.a {
			return false
		}
	}
	return true
}

// dep is one cluster a model read, and its assignment.
type dep struct {
	name string
	c    *cluster.Cluster
	a    *endpoint.ClusterLoadAssignment
}

// fromEnvoy is FromEnvoy with a cache (nil for none); it returns the
// cache for the next call.
func fromEnvoy(r *Resources, cache modelCache) ([]map[string]any, modelCache, error) {
	clusters := map[string]*cluster.Cluster{}
	for _, c := range r.Clusters {
		clusters[c.Name] = c
	}
	clas := map[string]*endpoint.ClusterLoadAssignment{}
	for _, a := range r.Endpoints {
		clas[a.ClusterName] = a
	}
	var out []map[string]any
	next := modelCache{}
	routes := append([]*route.RouteConfiguration(nil), r.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Name < routes[j].Name })
	for _, rc := range routes {
		if rc.Name == HTTPListenerName {
			continue
		}
		if cm, ok := cache[rc]; ok && cm.current(clusters, clas) {
			next[rc] = cm
			out = append(out, cm.m)
			continue
		}
		m, deps, err := modelFromRoute(rc, clusters, clas)
		if err != nil {
			return nil, next, fmt.Errorf("route configuration %q: %w", rc.Name, err)
		}
		next[rc] = cachedModel{m: m, deps: deps}
		out = append(out, m)
	}
	return out, next, nil
}

func modelFromRoute(rc *route.RouteConfiguration, clusters map[string]*cluster.Cluster,
	clas map[string]*endpoint.ClusterLoadAssignment) (map[string]any, []dep, error) {
	if len(rc.VirtualHosts) != 1 || len(rc.VirtualHosts[0].Routes) != 1 {
		return nil, nil, errors.New("a vane model needs exactly one virtual host holding one route")
	}
	rt := rc.VirtualHosts[0].Routes[0]
	action := rt.GetRoute()
	if action == nil {
		return nil, nil, errors.New("the route must forward (route action), not redirect or answer directly")
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
		shadow  bool
	}
	var targets []target
	switch {
	case action.GetWeightedClusters() != nil:
		for _, cw := range action.GetWeightedClusters().Clusters {
			targets = append(targets, target{cw.Name, cw.GetWeight().GetValue(), false})
		}
	case action.GetCluster() != "":
		targets = append(targets, target{action.GetCluster(), 1, false})
	default:
		return nil, nil, errors.New("the route must name a cluster or weighted_clusters")
	}
	// Mirrored clusters are vane's shadow versions.
	for _, mp := range action.GetRequestMirrorPolicies() {
		if mp.GetCluster() != "" {
			targets = append(targets, target{mp.GetCluster(), 0, true})
		}
	}
	var meta map[string]any
	if s := rt.GetMetadata().GetFilterMetadata()[MetadataKey]; s != nil {
		meta = s.AsMap()
	}
	exact, _ := meta["weights"].(map[string]any)
	var versions []any
	var deps []dep
	for _, t := range targets {
		c, ok := clusters[t.cluster]
		if !ok {
			return nil, nil, fmt.Errorf("%w: cluster %q not received", ErrIncomplete, t.cluster)
		}
		cla, ok := clas[t.cluster]
		if !ok {
			return nil, nil, fmt.Errorf("%w: endpoints of cluster %q not received", ErrIncomplete, t.cluster)
		}
		deps = append(deps, dep{t.cluster, c, cla})
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
		ver := map[string]any{"name": name, "weight": weight, "endpoints": endpointsOf(c, cla)}
		if t.shadow {
			ver["shadow"] = true
		}
		versions = append(versions, ver)
		if _, ok := m["health"]; !ok {
			if h := healthOf(c); h != nil {
				m["health"] = h
			}
		}
	}
	m["versions"] = versions
	delete(meta, "weights")
	merge(m, meta)
	return m, deps, nil
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

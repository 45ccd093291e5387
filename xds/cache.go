package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The xDS types vane serves, in the order ADS clients should apply them.
var typeURLs = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}

// TypeName is the short name of an xDS type URL (cds, eds, lds, rds), as
// metrics and /status name them; "other" for the rest.
func TypeName(typeURL string) string {
	switch typeURL {
	case resourcev3.ClusterType:
		return "cds"
	case resourcev3.EndpointType:
		return "eds"
	case resourcev3.ListenerType:
		return "lds"
	case resourcev3.RouteType:
		return "rds"
	}
	return "other"
}

// Cache is the control plane's state-of-the-world xDS cache: each group's
// resources, and the watches of the streams whose node cluster names the
// group. It implements go-control-plane's cache.Cache, and differs from
// its snapshot cache on the three points that matter for a fleet:
//
//   - every type is versioned by its content (a hash), and a named
//     request by the content of what it names, so a weight change sends
//     the routes and nothing else;
//   - a named request is answered with the subset it names (the stock
//     cache never answers an ADS request that does not name every
//     resource of its type), a wildcard one with the whole type (but the
//     API listeners, which only gRPC clients ask for, by name);
//   - a NACK parks the watch: the version the client rejected is never
//     re-sent to it, only a newer one (the stock cache re-sends it at
//     once, over a thousand times a second).
//
// Resources are marshalled once per update, deterministically, and every
// response shares them.
type Cache struct {
	// mu guards groups and watches.
	mu      sync.Mutex
	groups  map[string]*groupState
	watches map[*watch]struct{}
	// onNACK, when set, is called (outside mu) for each NACK received.
	onNACK func(group, typeURL, detail string)
}

// groupState is one group's resources by type URL.
type groupState struct{ types map[string]*typeState }

// typeState is one type's resources, marshalled.
type typeState struct {
	version string // hash of the whole type's content
	names   []string
	items   map[string]item
	// wildcard and wildcardVersion are what a wildcard request gets:
	// every resource, except for listeners, where the API listeners
	// (which Envoy takes only from its bootstrap, not from LDS) go only
	// to clients that name them, as gRPC clients do.
	wildcard        []string
	wildcardVersion string
}

type item struct {
	any  *anypb.Any
	hash string
}

// watch is one open request of one stream for one type.
type watch struct {
	req     *discovery.DiscoveryRequest
	sub     cache.Subscription
	ch      chan cache.Response
	group   string
	typeURL string
	// nacked is the response version the client rejected; it is not
	// sent again on this watch.
	nacked string
}

// NewCache returns an empty cache; onNACK may be nil.
func NewCache(onNACK func(group, typeURL, detail string)) *Cache {
	return &Cache{groups: map[string]*groupState{}, watches: map[*watch]struct{}{}, onNACK: onNACK}
}

var _ cache.Cache = (*Cache)(nil)

// build marshals one group's resources into the cache's form. It is
// separate from Set so that a whole file is built (and can fail) before
// anything is published.
func build(r *Resources) (*groupState, error) {
	g := &groupState{types: map[string]*typeState{}}
	add := func(typeURL, name string, m proto.Message) error {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return fmt.Errorf("marshalling %s %q: %w", TypeName(typeURL), name, err)
		}
		ts := g.types[typeURL]
		if ts == nil {
			ts = &typeState{items: map[string]item{}}
			g.types[typeURL] = ts
		}
		sum := sha256.Sum256(b)
		ts.items[name] = item{any: &anypb.Any{TypeUrl: typeURL, Value: b}, hash: hex.EncodeToString(sum[:8])}
		return nil
	}
	for _, x := range r.Listeners {
		if err := add(resourcev3.ListenerType, x.Name, x); err != nil {
			return nil, err
		}
	}
	for _, x := range r.Routes {
		if err := add(resourcev3.RouteType, x.Name, x); err != nil {
			return nil, err
		}
	}
	for _, x := range r.Clusters {
		if err := add(resourcev3.ClusterType, x.Name, x); err != nil {
			return nil, err
		}
	}
	for _, x := range r.Endpoints {
		if err := add(resourcev3.EndpointType, x.ClusterName, x); err != nil {
			return nil, err
		}
	}
	for _, typeURL := range typeURLs {
		ts := g.types[typeURL]
		if ts == nil {
			ts = &typeState{items: map[string]item{}}
			g.types[typeURL] = ts
		}
		for n := range ts.items {
			ts.names = append(ts.names, n)
		}
		sort.Strings(ts.names)
		ts.version = ts.hashOf(ts.names)
		ts.wildcard, ts.wildcardVersion = ts.names, ts.version
		if typeURL == resourcev3.ListenerType {
			ts.wildcard = nil
			if _, ok := ts.items[HTTPListenerName]; ok {
				ts.wildcard = []string{HTTPListenerName}
			}
			ts.wildcardVersion = ts.hashOf(ts.wildcard)
		}
	}
	return g, nil
}

// hashOf is the version of a set of names: a hash of their names and
// contents.
func (ts *typeState) hashOf(names []string) string {
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(ts.items[n].hash))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Versions returns a group's version of each type, by short type name;
// nil for an unknown group.
func (c *Cache) Versions(group string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return nil
	}
	out := map[string]string{}
	for t, ts := range g.types {
		out[TypeName(t)] = ts.version
	}
	return out
}

// Set replaces every group's resources (groups absent from groups are
// removed) and answers the open watches that the change concerns. A watch
// whose client already has the content, or rejected exactly it, stays
// open.
func (c *Cache) Set(groups map[string]*groupState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = groups
	// Clusters and endpoints go before the listeners and routes that
	// name them (each ADS stream sends in this order), so a new version
	// is known before traffic is routed to it.
	for _, t := range typeURLs {
		for w := range c.watches {
			if w.typeURL != t {
				continue
			}
			if resp, ok := c.answer(w); ok {
				delete(c.watches, w)
				w.ch <- resp
			}
		}
	}
}

// answer builds the response a watch is owed now, if any. mu is held.
func (c *Cache) answer(w *watch) (cache.Response, bool) {
	g := c.groups[w.group]
	if g == nil {
		return nil, false
	}
	ts := g.types[w.typeURL]
	if ts == nil {
		return nil, false
	}
	names, version := ts.wildcard, ts.wildcardVersion
	if !w.sub.IsWildcard() {
		names = nil
		for n := range w.sub.SubscribedResources() {
			if _, ok := ts.items[n]; ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		version = ts.hashOf(names)
	}
	if version == w.req.GetVersionInfo() || version == w.nacked {
		return nil, false
	}
	res := make([]*anypb.Any, len(names))
	returned := make(map[string]string, len(names))
	for i, n := range names {
		res[i] = ts.items[n].any
		returned[n] = version
	}
	return &cache.PassthroughResponse{
		Request: w.req,
		// A new message per response: the server writes its nonce in.
		DiscoveryResponse: &discovery.DiscoveryResponse{VersionInfo: version, Resources: res, TypeUrl: w.typeURL},
		ReturnedResources: returned,
	}, true
}

// CreateWatch answers a request at once when the client lacks the
// current content, and otherwise parks it until the content changes.
func (c *Cache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	w := &watch{req: req, sub: sub, ch: ch, group: req.GetNode().GetCluster(), typeURL: req.GetTypeUrl()}
	if req.GetErrorDetail() != nil {
		// The client rejected the response it last got: the version it
		// was sent (every returned resource carries it).
		for _, v := range sub.ReturnedResources() {
			w.nacked = v
			break
		}
		if c.onNACK != nil {
			c.onNACK(w.group, w.typeURL, req.GetErrorDetail().GetMessage())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.nacked == "" && req.GetErrorDetail() != nil {
		// Nothing recorded (the rejected response was empty): park on
		// the current content.
		if resp, ok := c.answer(w); ok {
			w.nacked = resp.GetResponseVersion()
		}
	}
	if resp, ok := c.answer(w); ok {
		ch <- resp
		return func() {}, nil
	}
	c.watches[w] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(c.watches, w)
		c.mu.Unlock()
	}, nil
}

// errDelta says that only state of the world is served.
var errDelta = errors.New("vane's control plane serves state-of-the-world xDS only, not delta")

// CreateDeltaWatch refuses: delta xDS is not served.
func (c *Cache) CreateDeltaWatch(*cache.DeltaRequest, cache.Subscription, chan cache.DeltaResponse) (func(), error) {
	return nil, errDelta
}

// Fetch answers a REST-style poll with the current content.
func (c *Cache) Fetch(_ context.Context, req *cache.Request) (cache.Response, error) {
	return nil, errors.New("vane's control plane serves streams (ADS) only")
}

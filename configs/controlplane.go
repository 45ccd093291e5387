package configs

import (
	"fmt"
	"os"
	"reflect"
	"strings"
)

// ControlPlane is the file of `vane control-plane`: where it listens and
// the groups of models it serves over xDS. A sidecar joins the group named
// by its node cluster (xds.cluster in serve's file).
type ControlPlane struct {
	// Listen is the gRPC (ADS) address. Default "127.0.0.1:18000".
	Listen string `yaml:"listen"`
	// Admin is the admin listener, the same shape as serve's (/metrics,
	// /healthz, /readyz, /status, POST /reload). Default listen
	// "127.0.0.1:9902".
	Admin Admin `yaml:"admin"`
	// TLS, when set, makes the gRPC listener require mutual TLS: clients
	// must present a certificate signed by ca_file.
	TLS TLS `yaml:"tls"`
	// Groups are the model sets served; at least one, names unique.
	Groups []Group `yaml:"groups"`
}

// Group is one set of models, served to the sidecars whose node cluster
// is its name.
type Group struct {
	// Name matches [a-z0-9][a-z0-9._-]* and is unique.
	Name string `yaml:"name"`
	// Models have exactly the schema of serve's models[]; at least one.
	Models []Model `yaml:"models"`
}

// Control plane defaults.
const (
	DefaultControlPlaneListen = "127.0.0.1:18000"
	DefaultControlPlaneAdmin  = "127.0.0.1:9902"
)

// LoadControlPlane reads and parses a control plane file; see
// ParseControlPlane. The raw bytes are returned whenever they could be read.
func LoadControlPlane(path string) (*ControlPlane, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading control plane config: %w", err)
	}
	cp, err := ParseControlPlane(data)
	return cp, data, err
}

// ParseControlPlane decodes a control plane file strictly, fills in the
// defaults (every model's exactly as serve's) and validates it, with the
// same rules and messages as serve's models. Problems come back as Errors,
// each with its field path (groups[0].models[1].versions[0].weight) and
// line.
func ParseControlPlane(data []byte) (*ControlPlane, error) {
	root, probs := parseNode(data)
	if len(probs) > 0 {
		return nil, probs.err()
	}
	var cp ControlPlane
	d := &decoder{idx: nodeIndex{}}
	if root != nil && !isNull(resolve(root)) {
		d.decode(root, reflect.ValueOf(&cp).Elem(), "")
	}
	if d.steps > maxDecodeSteps {
		return nil, d.probs.err()
	}
	setDefault(&cp.Listen, d.idx, "listen", DefaultControlPlaneListen)
	setDefault(&cp.Admin.Listen, d.idx, "admin.listen", DefaultControlPlaneAdmin)
	probs = append(d.probs, validateControlPlane(&cp, d.idx).withoutOverlap(d.probs)...)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return &cp, nil
}

// validateControlPlane fills each group's model defaults and checks the
// file. A group's models are defaulted and validated as the models of a
// serve file, through a view of the index rooted at the group, so the
// rules, messages and lines are serve's; only the path gains the group.
func validateControlPlane(cp *ControlPlane, idx nodeIndex) Errors {
	v := &validator{idx: idx}
	v.listeners(&Config{Listen: cp.Listen, Admin: cp.Admin})
	v.tls("tls", cp.TLS)
	if len(cp.Groups) == 0 {
		v.add("groups", "at least one group is required")
	}
	names := map[string]int{}
	for i := range cp.Groups {
		g, p := &cp.Groups[i], item("groups", i)
		v.name(p+".name", g.Name)
		if j, dup := names[g.Name]; dup && g.Name != "" {
			v.add(p+".name", "duplicate group name %q (also groups[%d])", g.Name, j)
		} else {
			names[g.Name] = i
		}
		sub := idx.under(p + ".")
		for j := range g.Models {
			modelDefaults(&g.Models[j], sub, item("models", j))
		}
		// A stand-in config whose addresses are valid, so that only the
		// models' problems come back.
		stand := &Config{Listen: "127.0.0.1:1", Admin: Admin{Listen: "127.0.0.1:2"},
			Shutdown: Shutdown{DrainTimeout: 1}, Sampling: Sampling{QueueSize: 1, Workers: 1}, Models: g.Models}
		// The sidecar-wide keys take their defaults (the stand-in has
		// none of its own in the file).
		shadowDefaults(stand, nodeIndex{})
		accessLogDefaults(stand, nodeIndex{})
		probs := validate(stand, sub)
		for _, pr := range probs {
			pr.Path = p + "." + pr.Path
			v.probs = append(v.probs, pr)
		}
	}
	return v.probs
}

// under returns the entries of ix below prefix, with prefix removed.
func (ix nodeIndex) under(prefix string) nodeIndex {
	out := nodeIndex{}
	for k, e := range ix {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = e
		}
	}
	return out
}

// Group returns the group named name, or nil.
func (cp *ControlPlane) Group(name string) *Group {
	for i := range cp.Groups {
		if cp.Groups[i].Name == name {
			return &cp.Groups[i]
		}
	}
	return nil
}

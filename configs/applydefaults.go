package configs

import (
	"reflect"
	"strings"
	"time"
)

// ApplyDefaults fills in the defaults of a Config built in code, as Parse
// does for a file, so that every config that reaches vane's parts has its
// defaults applied in one place (here) and they never default again.
//
// A file tells an absent key from one set to zero; a Go value cannot, so
// a key counts as unset when its field holds the zero value ("", 0, a nil
// list or map), except where zero is a setting of its own, which it keeps:
// versions[].weight, monitor.sample_rate, monitor.max_body_bytes,
// monitor.max_age, retry.budget_ratio, retry.min_concurrent,
// limits.endpoint_concurrency, routing.shadow_rate,
// access_log.sample_rate, the rollout gates' floors, and every boolean.
// An empty list that is not nil counts as set ([]int{} is "no status").
// A rollout, like every section, counts as present when any of its fields
// is set.
//
// ApplyDefaults does not validate; call Validate after it.
func ApplyDefaults(c *Config) {
	idx := nodeIndex{}
	markSet(reflect.ValueOf(c).Elem(), "", idx)
	applyDefaults(c, idx)
}

// zeroIsSetting names the keys (last path element) whose zero value is a
// setting rather than "unset" in a Config built in code.
var zeroIsSetting = map[string]bool{
	"weight":               true,
	"sample_rate":          true,
	"max_body_bytes":       true,
	"max_age":              true,
	"budget_ratio":         true,
	"min_concurrent":       true,
	"endpoint_concurrency": true,
	"shadow_rate":          true,
	"error_rate_floor":     true,
	"p99_floor":            true,
}

// markSet records in idx, as the decoder does for a file, the path of
// every field of the struct v that counts as set (see ApplyDefaults), and
// reports whether any field of v holds a non-zero value.
func markSet(v reflect.Value, path string, idx nodeIndex) bool {
	present := false
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key, fv := child(path, name), v.Field(i)
		var nonZero bool
		switch {
		case fv.Type() == reflect.TypeFor[time.Duration]():
			nonZero = fv.Int() != 0
		case fv.Kind() == reflect.Struct:
			nonZero = markSet(fv, key, idx)
		case fv.Kind() == reflect.Slice:
			nonZero = !fv.IsNil()
			if fv.Type().Elem().Kind() == reflect.Struct {
				for j := range fv.Len() {
					markSet(fv.Index(j), item(key, j), idx)
				}
			}
		case fv.Kind() == reflect.Map:
			nonZero = !fv.IsNil()
		default:
			nonZero = !fv.IsZero()
		}
		if nonZero || fv.Kind() == reflect.Bool || zeroIsSetting[name] {
			idx[key] = entry{}
		}
		present = present || nonZero
	}
	return present
}

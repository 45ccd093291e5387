package proxy

import "github.com/vaneproxy/vane/configs"

// ApplyConfig swaps in a config that came from somewhere other than the
// config file (an xDS control plane), through the same atomic snapshot
// path as a reload: health, breaker and monitor state are kept, and a
// config that cannot be applied changes nothing and is the error. cfg
// must be complete and valid, as configs.Parse returns it (one built in
// code: configs.ApplyDefaults, then Validate): vane's parts take its values
// as they are and apply no defaults of their own. raw is the file it was
// parsed from, whose hash becomes the config hash.
func (s *Server) ApplyConfig(cfg *configs.Config, raw []byte) (string, error) {
	return s.apply(cfg, raw)
}

// SetSource installs the function whose result GET /status shows as
// "source": where the models come from. Without one, /status shows the
// config file.
func (s *Server) SetSource(f func() any) {
	s.source.Store(&f)
}

// sourceStatus is the "source" of Status.
func (s *Server) sourceStatus() any {
	if f := s.source.Load(); f != nil {
		return (*f)()
	}
	return map[string]string{"source": "file", "path": s.opts.ConfigPath}
}

package proxy

import (
	"fmt"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"
)

// Profiling on the admin port, written with runtime/pprof directly so that
// nothing is registered on http.DefaultServeMux:
//
//	GET /debug/pprof/profile?seconds=N   CPU profile (default 10 s, at most 60)
//	GET /debug/pprof/{heap,allocs,goroutine,block,mutex,threadcreate}
//
// Profiles are guarded like the other reading endpoints (admin.guard_reads).
func (s *Server) servePprof(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "profile" {
		secs := 10
		if v := r.URL.Query().Get("seconds"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 60 {
				writeJSON(w, http.StatusBadRequest, apiError{Error: "seconds must be 1..60"})
				return
			}
			secs = n
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="cpu.pprof"`)
		if err := pprof.StartCPUProfile(w); err != nil {
			writeJSON(w, http.StatusConflict, apiError{Error: fmt.Sprintf("cpu profile: %v", err)})
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
		return
	}
	p := pprof.Lookup(name)
	if p == nil || name == "" {
		writeJSON(w, http.StatusNotFound, apiError{Error: "unknown profile " + strconv.Quote(name)})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.pprof"`)
	_ = p.WriteTo(w, 0)
}

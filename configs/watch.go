package configs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange each time the bytes of the file at path change, and
// returns when ctx is done (nil) or when the watcher fails (an error).
//
// It watches the file's directory rather than the file, because the ways
// configs are replaced swap the file instead of writing it in place:
//
//   - editors write a temporary file and rename it over the old one;
//   - a Kubernetes ConfigMap volume makes path a symlink through "..data",
//     itself a symlink to a timestamped directory; an update writes a new
//     directory, points "..data_tmp" at it, renames "..data_tmp" over
//     "..data" and removes the old directory.
//
// When path resolves (through symlinks) into another directory, that one is
// watched too, so edits to a symlink's target are seen.
//
// Every event in a watched directory (other than a bare chmod) starts or
// restarts a quiet period of debounce; when it ends, Watch reads the file
// and calls onChange only if its content hash differs from the last one
// seen (the content at start counts as seen). So a burst of events is one
// call, rewriting identical bytes is none, and a change made while onChange
// runs is caught by the check that follows. While the file is missing or
// unreadable, as it may be midway through a swap, nothing is called;
// logf (which may be nil) says why.
//
// onChange runs on Watch's goroutine, one call at a time; it usually
// re-reads the file with Load. The directory of path must exist when Watch
// starts; the file need not.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func(), logf func(format string, args ...any)) error {
	return watch(ctx, path, "", debounce, onChange, logf, nil)
}

// WatchFrom is Watch for a caller that already loaded the file: since is
// the Hash of the bytes it loaded. If the file no longer has those bytes
// once watching has started (it changed between the load and the watch),
// onChange is called at once, so no change is missed.
func WatchFrom(ctx context.Context, path, since string, debounce time.Duration, onChange func(), logf func(format string, args ...any)) error {
	return watch(ctx, path, since, debounce, onChange, logf, nil)
}

// watch is Watch with a hook for tests: ready, when not nil, is called once
// the directory is watched and the initial content hashed, so that changes
// made after it returns are certain to be seen.
func watch(ctx context.Context, path, since string, debounce time.Duration, onChange func(), logf func(format string, args ...any), ready func()) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("watching config: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("watching config: %s is not a directory", dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching config: %w", err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watching config directory %s: %w", dir, err)
	}

	fw := &fileWatch{path: path, dir: dir, w: w, logf: logf}
	fw.last, _ = fw.hash()
	fw.followTarget()
	if ready != nil {
		ready()
	}
	if since != "" && fw.last != "" && fw.last != since {
		onChange()
	}

	// timer fires debounce after the last event; nil while idle.
	var timer *time.Timer
	var fire <-chan time.Time
	arm := func() {
		if timer == nil {
			timer = time.NewTimer(debounce)
			fire = timer.C
		} else {
			timer.Reset(debounce)
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watching config: watcher closed")
			}
			if ev.Op != fsnotify.Chmod {
				arm()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watching config: watcher closed")
			}
			logf("config watch: %v", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm() // events were lost: check as if one had come
			}
		case <-fire:
			timer, fire = nil, nil
			if fw.changed() {
				onChange()
			}
			fw.followTarget()
		}
	}
}

// fileWatch is the state of one Watch, owned by its goroutine.
type fileWatch struct {
	path, dir string
	w         *fsnotify.Watcher
	logf      func(format string, args ...any)
	last      string // Hash of the content last seen; "" when never read
	target    string // extra directory watched for path's symlink target; "" when none
}

// hash reads the file and hashes its content.
func (fw *fileWatch) hash() (string, error) {
	data, err := os.ReadFile(fw.path)
	if err != nil {
		return "", err
	}
	return Hash(data), nil
}

// changed reports whether the content differs from the last seen, and
// records it as seen.
func (fw *fileWatch) changed() bool {
	h, err := fw.hash()
	if err != nil {
		fw.logf("config watch: %v; keeping the current config", err)
		return false
	}
	if h == fw.last {
		return false
	}
	fw.last = h
	return true
}

// followTarget watches the directory that path's symlinks resolve into,
// when it is not the directory of path; a swap moves it, so it is
// re-resolved after every check.
func (fw *fileWatch) followTarget() {
	resolved, err := filepath.EvalSymlinks(fw.path)
	if err != nil {
		return
	}
	target := filepath.Dir(resolved)
	if abs, err := filepath.Abs(target); err == nil {
		target = abs
	}
	own, err := filepath.Abs(fw.dir)
	if err != nil {
		own = fw.dir
	}
	if ownResolved, err := filepath.EvalSymlinks(own); err == nil {
		own = ownResolved
	}
	if target == own || target == fw.target {
		return
	}
	if fw.target != "" {
		// The old target may be gone already, which removed its watch.
		_ = fw.w.Remove(fw.target)
		fw.target = ""
	}
	if err := fw.w.Add(target); err != nil {
		fw.logf("config watch: watching %s: %v", target, err)
		return
	}
	fw.target = target
}

// Package testutil holds small helpers shared by the tests of several
// packages. Only tests import it.
package testutil

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a logger or a child process and the test
// may write and read at the same time. The zero value is ready.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

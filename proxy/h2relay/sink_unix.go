//go:build unix

package h2relay

import (
	"errors"
	"syscall"
)

const canRawWrite = true

// rawAttempt writes s.p to fd until done or the socket buffer is full,
// never waiting: it always reports itself done.
func (s *sink) rawAttempt(fd uintptr) bool {
	for s.n < len(s.p) {
		n, err := syscall.Write(int(fd), s.p[s.n:])
		if n > 0 {
			s.n += n
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return true
		default:
			s.err = err
			return true
		}
	}
	return true
}

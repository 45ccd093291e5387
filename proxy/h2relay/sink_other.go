//go:build !unix

package h2relay

const canRawWrite = false

func (s *sink) rawAttempt(uintptr) bool { return true }

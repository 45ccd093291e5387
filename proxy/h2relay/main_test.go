package h2relay

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: the relay's readers, dials,
// janitors and Serve goroutines included.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadlineRecorder is a net.Conn that records the deadlines set on it.
type deadlineRecorder struct {
	net.Conn
	reads, writes []time.Time
	fail          bool
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	if d.fail {
		return errors.New("closed")
	}
	d.reads = append(d.reads, t)
	return nil
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writes = append(d.writes, t)
	return nil
}

func TestLazyDeadlines(t *testing.T) {
	rec := &deadlineRecorder{}
	var slack atomic.Int64
	slack.Store(int64(100 * time.Millisecond))
	c := &lazyDeadlineConn{Conn: rec, slack: &slack}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond

	require.NoError(t, c.SetReadDeadline(t0))
	require.Equal(t, []time.Time{t0.Add(100 * ms)}, rec.reads, "first deadline set, slack later")
	require.NoError(t, c.SetReadDeadline(t0.Add(60*ms)))
	require.NoError(t, c.SetReadDeadline(t0.Add(100*ms)))
	require.Len(t, rec.reads, 1, "deadlines the one in force covers within slack are not set")
	require.NoError(t, c.SetReadDeadline(t0.Add(101*ms)))
	require.Equal(t, t0.Add(201*ms), rec.reads[1], "a later deadline moves it")
	require.NoError(t, c.SetReadDeadline(t0.Add(50*ms)))
	require.Equal(t, t0.Add(150*ms), rec.reads[2], "an earlier deadline than slack allows moves it back")
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	require.NoError(t, c.SetReadDeadline(time.Time{}))
	require.Len(t, rec.reads, 4, "clearing is passed on once")
	assert.True(t, rec.reads[3].IsZero())

	require.NoError(t, c.SetDeadline(t0))
	assert.Equal(t, t0.Add(100*ms), rec.writes[0], "SetDeadline sets both")
	assert.Equal(t, t0.Add(100*ms), rec.reads[4])

	rec.fail = true
	require.Error(t, c.SetReadDeadline(t0.Add(500*ms)))
	rec.fail = false
	require.NoError(t, c.SetReadDeadline(t0.Add(10*ms)))
	assert.Equal(t, t0.Add(110*ms), rec.reads[5], "after a failed set the next one is not skipped")

	slack.Store(0)
	require.NoError(t, c.SetReadDeadline(t0.Add(20*ms)))
	assert.Equal(t, t0.Add(20*ms), rec.reads[6], "zero slack: every change is made, exactly")
}

// An upstream connection's reads and writes pass through unchanged,
// whether or not the read follows a write (and yields first).
func TestLazyConnReadsAndWrites(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var slack atomic.Int64
	c := &lazyDeadlineConn{Conn: a, slack: &slack, yieldFirstRead: true}
	go func() {
		buf := make([]byte, 4)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			_, _ = b.Write(buf[:n])
		}
	}()
	for _, msg := range []string{"ping", "pong"} {
		_, err := c.Write([]byte(msg))
		require.NoError(t, err)
		got := make([]byte, 4)
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		assert.Equal(t, msg, string(got))
		assert.False(t, c.wrote, "the first read after a write clears the mark")
	}
}

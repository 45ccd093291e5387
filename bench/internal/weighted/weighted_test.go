package weighted

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func id(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("empty")
	}
	return addr, nil
}

func TestSlots(t *testing.T) {
	s, err := Slots("a=80, b=20", id)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "a", "b", "a", "a"}, s, "80/20 reduces to 4:1, interleaved")
	s, err = Slots("a=2,b=3,c", id)
	require.NoError(t, err)
	assert.Len(t, s, 6)
	count := map[string]int{}
	for _, x := range s {
		count[x]++
	}
	assert.Equal(t, map[string]int{"a": 2, "b": 3, "c": 1}, count)

	for _, bad := range []string{"a=0", "a=x", "=5", "a=-1"} {
		_, err := Slots(bad, id)
		assert.Error(t, err, bad)
	}
}

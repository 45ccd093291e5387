package decode

import "encoding/binary"

// jsonValid reports whether b is one JSON value, exactly as json.Valid
// does, which spends most of its time in a call per byte through its
// state machine. Like json.Valid it leaves UTF-8 in strings unchecked and
// refuses nesting past maxValidDepth.
//
// It is one function with gotos for its states because calls are what
// cost: Go keeps no register across one, so each would spill the scan.
func jsonValid(b []byte) bool {
	var (
		i, depth int
		// Bit 0 is set when the innermost open container is an object. The
		// bits shifted out past 64 levels spill into deep, so that only
		// pathological input allocates.
		objs uint64
		deep []bool
		key  bool // the string being scanned is a member name
	)
value:
	i = wsEnd(b, i)
	if i >= len(b) {
		return false
	}
	switch c := b[i]; c {
	case '{', '[':
		if depth == maxValidDepth {
			return false
		}
		if depth >= 64 {
			deep = append(deep, objs>>63 != 0)
		}
		objs <<= 1
		if c == '{' {
			objs |= 1
		}
		depth++
		i = wsEnd(b, i+1)
		if i < len(b) && b[i] == "]}"[objs&1] {
			goto pop
		}
		if c == '{' {
			goto name
		}
		goto value
	case '"':
		goto str
	case 't':
		i = validLiteral(b, i, "true")
	case 'f':
		i = validLiteral(b, i, "false")
	case 'n':
		i = validLiteral(b, i, "null")
	default:
		// A number, or nothing. What may follow it is left to next, which
		// is how "01" fails: as a 0 followed by a stray digit.
		if c == '-' {
			i++
		}
		if i >= len(b) || b[i]-'0' > 9 {
			return false
		}
		if b[i] == '0' {
			i++
		} else {
			i = digitsEnd(b, i)
		}
		if i < len(b) && b[i] == '.' {
			j := digitsEnd(b, i+1)
			if j == i+1 {
				return false
			}
			i = j
		}
		if i < len(b) && b[i]|0x20 == 'e' {
			i++
			if i < len(b) && (b[i] == '+' || b[i] == '-') {
				i++
			}
			j := digitsEnd(b, i)
			if j == i {
				return false
			}
			i = j
		}
	}
	if i < 0 {
		return false
	}
next:
	// A value ended: what may follow depends on the container it is in.
	i = wsEnd(b, i)
	if depth == 0 {
		return i == len(b)
	}
	if i >= len(b) {
		return false
	}
	switch b[i] {
	case ',':
		i++
		if objs&1 != 0 {
			goto name
		}
		goto value
	case "]}"[objs&1]:
		goto pop
	}
	return false
pop:
	i++
	depth--
	objs >>= 1
	if depth >= 64 {
		if deep[len(deep)-1] {
			objs |= 1 << 63
		}
		deep = deep[:len(deep)-1]
	}
	goto next
name:
	i = wsEnd(b, i)
	if i >= len(b) || b[i] != '"' {
		return false
	}
	key = true
str:
	// b[i] is the opening quote.
	i++
	for {
		// Text runs long in chat payloads: skip it a word at a time while
		// no byte is a quote, a backslash or below 0x20. (x-ones*n)&^x
		// sets the top bit of some byte exactly when a byte of x is below
		// n (borrows may mark more bytes, never one without a match).
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			q, s := w^(ones*'"'), w^(ones*'\\')
			if ((q-ones)&^q|(s-ones)&^s|(w-ones*0x20)&^w)&(ones*0x80) != 0 {
				break
			}
			i += 8
		}
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) || b[i] < 0x20 {
			return false
		}
		if b[i] == '"' {
			break
		}
		if i = escapeEnd(b, i); i < 0 {
			return false
		}
	}
	i++
	if !key {
		goto next
	}
	key = false
	if i = wsEnd(b, i); i >= len(b) || b[i] != ':' {
		return false
	}
	i++
	goto value
}

// maxValidDepth is the nesting encoding/json accepts.
const maxValidDepth = 10000

// wsEnd is skipWS for the usual case, compact JSON, where the loop costs
// more than the test for no whitespace at all.
func wsEnd(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipWS(b, i)
}

// ones has 1 in each byte, to broadcast a byte over a word.
const ones = 0x0101010101010101

// plainStringByte marks the bytes a string holds as they are: all but the
// quote, the backslash and control characters.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escapeEnd returns the index just past the escape sequence at b[i], a
// backslash, or -1 when it is malformed.
func escapeEnd(b []byte, i int) int {
	if i+1 >= len(b) {
		return -1
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
			return -1
		}
		return i + 6
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

// validLiteral returns the index just past lit at b[i], or -1 when it is
// not there.
func validLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// digitsEnd returns the index of the first byte at or after i that is not
// a decimal digit.
func digitsEnd(b []byte, i int) int {
	for i < len(b) && b[i]-'0' <= 9 {
		i++
	}
	return i
}

package xfr

// Order is the result of comparing two serial numbers (RFC 1982 §3.2).
type Order int8

const (
	// Equal serials name the same zone version.
	Equal Order = iota
	// Lower: the first serial is older than the second.
	Lower
	// Greater: the first serial is newer than the second.
	Greater
	// Incomparable: the serials are exactly 2^31 apart, so RFC 1982 leaves
	// the comparison undefined. Treat it as "not newer".
	Incomparable
)

func (o Order) String() string {
	switch o {
	case Equal:
		return "equal"
	case Lower:
		return "lower"
	case Greater:
		return "greater"
	default:
		return "incomparable"
	}
}

// CompareSerial compares s1 with s2 in RFC 1982 sequence space arithmetic
// with SERIAL_BITS = 32: s1 is Lower when it lies within 2^31-1 steps behind
// s2 (wrapping around 2^32), Greater when it lies within 2^31-1 steps ahead.
func CompareSerial(s1, s2 uint32) Order {
	d := s1 - s2 // wraps modulo 2^32
	switch {
	case d == 0:
		return Equal
	case d == 1<<31:
		return Incomparable
	case d < 1<<31:
		return Greater
	default:
		return Lower
	}
}

// newer reports whether serial s1 is strictly newer than s2.
func newer(s1, s2 uint32) bool { return CompareSerial(s1, s2) == Greater }

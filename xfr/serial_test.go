package xfr

import "testing"

func TestCompareSerial(t *testing.T) {
	tests := []struct {
		s1, s2 uint32
		want   Order
	}{
		{0, 0, Equal},
		{0xffffffff, 0xffffffff, Equal},
		{1, 0, Greater},
		{0, 1, Lower},
		{2024010100, 2024010101, Lower},
		// Wrap around 2^32 (RFC 1982 §3.2 examples, SERIAL_BITS=32).
		{0, 0xffffffff, Greater},
		{0xffffffff, 0, Lower},
		{5, 0xfffffff0, Greater},
		// The largest step forward that is still "greater": 2^31-1.
		{0x7fffffff, 0, Greater},
		{0, 0x7fffffff, Lower},
		{0x80000000 + 100, 101, Greater},
		// Exactly 2^31 apart: undefined in both directions.
		{0x80000000, 0, Incomparable},
		{0, 0x80000000, Incomparable},
		{0xffffffff, 0x7fffffff, Incomparable},
		// Just past half the space: the comparison flips.
		{0x80000001, 0, Lower},
		{0, 0x80000001, Greater},
	}
	for _, tc := range tests {
		if got := CompareSerial(tc.s1, tc.s2); got != tc.want {
			t.Errorf("CompareSerial(%d, %d) = %v, want %v", tc.s1, tc.s2, got, tc.want)
		}
	}
}

// TestCompareSerialAntisymmetric checks that swapping the operands swaps
// Lower and Greater, and leaves Equal and Incomparable alone.
func TestCompareSerialAntisymmetric(t *testing.T) {
	mirror := map[Order]Order{Equal: Equal, Lower: Greater, Greater: Lower, Incomparable: Incomparable}
	vals := []uint32{0, 1, 2, 100, 1 << 30, 1<<31 - 1, 1 << 31, 1<<31 + 1, 1<<32 - 2, 1<<32 - 1}
	for _, a := range vals {
		for _, b := range vals {
			if got, want := CompareSerial(b, a), mirror[CompareSerial(a, b)]; got != want {
				t.Errorf("CompareSerial(%d, %d) = %v, want %v (mirror of %v)", b, a, got, want, CompareSerial(a, b))
			}
		}
	}
}

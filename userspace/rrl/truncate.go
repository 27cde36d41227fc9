package rrl

import (
	"encoding/binary"
	"errors"
)

// errShort: a response Slipped cannot walk (never made by the responder).
var errShort = errors.New("rrl: response cut short")

// Rcode returns the 12-bit RCODE of a response: the header's 4 bits and,
// when it carries an OPT, the extended bits (BADVERS, BADCOOKIE).
func Rcode(resp []byte) int {
	if len(resp) < 12 {
		return 0
	}
	rc := int(resp[3] & 0xf)
	if o := optOffset(resp); o > 0 {
		rc |= int(resp[o+5]) << 4
	}
	return rc
}

// Slipped appends to dst the truncated form of the response resp: what
// wire.Compose sends when the response is over the client's limit (TC=1,
// AN=NS=0, the question, and the OPT with its options when there is one).
// XDP's slip is that same path, so both send these bytes.
func Slipped(dst, resp []byte) ([]byte, error) {
	if len(resp) < 12 {
		return nil, errShort
	}
	qend, err := questionEnd(resp)
	if err != nil {
		return nil, err
	}
	o := optOffset(resp)
	start := len(dst)
	dst = append(dst, resp[:qend]...)
	h := dst[start:]
	h[2] |= 0x02 // TC
	binary.BigEndian.PutUint16(h[6:], 0)
	binary.BigEndian.PutUint16(h[8:], 0)
	binary.BigEndian.PutUint16(h[10:], 0)
	if o > 0 {
		binary.BigEndian.PutUint16(h[10:], 1)
		dst = append(dst, resp[o:]...)
	}
	return dst, nil
}

func questionEnd(m []byte) (int, error) {
	off := 12
	for range binary.BigEndian.Uint16(m[4:]) {
		var err error
		if off, err = skipName(m, off); err != nil {
			return 0, err
		}
		off += 4
		if off > len(m) {
			return 0, errShort
		}
	}
	return off, nil
}

// optOffset returns where the OPT record starts when it is the last record
// of resp (as Compose writes it), else 0.
func optOffset(m []byte) int {
	off, err := questionEnd(m)
	if err != nil {
		return 0
	}
	n := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	last := 0
	for i := 0; i < n; i++ {
		last = off
		if off, err = skipName(m, off); err != nil || off+10 > len(m) {
			return 0
		}
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return 0
		}
	}
	if n == 0 || off != len(m) || m[last] != 0 || binary.BigEndian.Uint16(m[last+1:]) != 41 {
		return 0
	}
	return last
}

func skipName(m []byte, off int) (int, error) {
	for off < len(m) {
		switch c := m[off]; {
		case c == 0:
			return off + 1, nil
		case c&0xc0 == 0xc0:
			return off + 2, nil
		case c&0xc0 != 0:
			return 0, errShort
		default:
			off += 1 + int(c)
		}
	}
	return 0, errShort
}

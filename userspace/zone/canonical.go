package zone

import (
	"bytes"

	"github.com/miekg/dns"
)

// Compare orders two names canonically (RFC 4034 §6.1): label by label from
// the right, each label compared as lowercase octets, a missing label first.
// It returns -1, 0 or +1.
func Compare(a, b string) int {
	return bytes.Compare(SortKey(nil, a), SortKey(nil, b))
}

// SortKey appends to dst a byte string whose bytewise order is the canonical
// order of names: the lowercased labels from the rightmost, each followed by
// 00 00, with a zero octet inside a label written 00 01 so that it still sorts
// below every other octet but above the end of the label. Sorting by keys
// built once is what makes a million-name zone sort in a second.
func SortKey(dst []byte, name string) []byte {
	var buf [wireMax]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return append(dst, name...)
	}
	w := buf[:n]
	var starts [wireMax / 2]int
	k := 0
	for off := 0; off < len(w) && w[off] != 0; off += int(w[off]) + 1 {
		starts[k] = off
		k++
	}
	for i := k - 1; i >= 0; i-- {
		off := starts[i]
		for _, c := range w[off+1 : off+1+int(w[off])] {
			switch {
			case c == 0:
				dst = append(dst, 0, 1)
			case 'A' <= c && c <= 'Z':
				dst = append(dst, c+'a'-'A')
			default:
				dst = append(dst, c)
			}
		}
		dst = append(dst, 0, 0)
	}
	return dst
}

const wireMax = 256

package zone

import (
	"bytes"

	"github.com/miekg/dns"
)

// Compare orders two names canonically (RFC 4034 §6.1): label by label from
// the right, each label compared as lowercase octets, a missing label first.
// It returns -1, 0 or +1.
func Compare(a, b string) int {
	la, lb := wireLabels(a), wireLabels(b)
	i, j := len(la)-1, len(lb)-1
	for ; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := bytes.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	switch {
	case i < 0 && j < 0:
		return 0
	case i < 0:
		return -1
	default:
		return 1
	}
}

// wireLabels returns the lowercased wire-format labels of a presentation
// name, escapes resolved, leftmost first.
func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return [][]byte{[]byte(name)}
	}
	buf = buf[:n]
	for i, c := range buf { // ASCII only: bytes.ToLower would rewrite non-UTF-8 octets
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	var out [][]byte
	for off := 0; off < len(buf) && buf[off] != 0; off += int(buf[off]) + 1 {
		out = append(out, buf[off+1:off+1+int(buf[off])])
	}
	return out
}

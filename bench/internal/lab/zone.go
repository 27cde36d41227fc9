package lab

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
)

// Host is the i-th name of a zone written by WriteZone, relative to its
// origin.
func Host(i int) string { return fmt.Sprintf("host%d", i) }

// HostA and HostAAAA are the addresses WriteZone gives the i-th name.
func HostA(i int) netip.Addr    { return nth(netip.MustParseAddr("198.18.1.0"), i+1) }
func HostAAAA(i int) netip.Addr { return nth(netip.MustParseAddr("2001:2::1:0"), i+1) }

func nth(a netip.Addr, n int) netip.Addr {
	b := a.As16()
	carry := uint64(n)
	for k := 15; k >= 0 && carry > 0; k-- {
		s := uint64(b[k]) + carry&0xff
		b[k] = byte(s)
		carry = carry>>8 + s>>8
	}
	out := netip.AddrFrom16(b)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}

// WriteZone writes a zone of n names, each with one A and one AAAA (name i
// is Host(i) with HostA(i) and HostAAAA(i)), after the SOA (serial 1,
// refresh 7200), one NS and its address, and returns the number of
// records: 3 + 2n. Addresses come from the benchmarking ranges
// (198.18.0.0/15, 2001:2::/48); nothing ever sends to them.
func WriteZone(path, origin string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL 3600\n", origin)
	fmt.Fprintf(w, "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n")
	fmt.Fprintf(w, "@ IN NS ns1\nns1 IN A 198.18.0.53\n")
	v4 := netip.MustParseAddr("198.18.1.0")
	v6 := netip.MustParseAddr("2001:2::1:0")
	for i := range n {
		v4, v6 = v4.Next(), v6.Next()
		fmt.Fprintf(w, "host%d IN A %s\nhost%d IN AAAA %s\n", i, v4, i, v6)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return 3 + 2*n, f.Close()
}

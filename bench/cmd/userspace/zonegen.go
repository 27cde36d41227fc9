package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
)

// writeZone writes a zone of n names, each with one A and one AAAA, and
// returns the number of records. Addresses come from the benchmarking
// ranges (198.18.0.0/15, 2001:2::/48); nothing ever sends to them.
func writeZone(path, origin string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
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

// writeQueries writes a dnsperf data file: every name asked for A and for
// AAAA, in a fixed shuffled order (seeded, so runs are comparable).
func writeQueries(path, origin string, n int) error {
	type q struct {
		i    int
		aaaa bool
	}
	qs := make([]q, 0, 2*n)
	for i := range n {
		qs = append(qs, q{i, false}, q{i, true})
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, x := range qs {
		t := "A"
		if x.aaaa {
			t = "AAAA"
		}
		fmt.Fprintf(w, "host%d.%s %s\n", x.i, origin, t)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

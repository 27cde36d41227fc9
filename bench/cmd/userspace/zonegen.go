package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
)

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

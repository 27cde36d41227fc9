package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "z")
	const n = 70000 // past a carry in both families
	if nrr, err := WriteZone(path, "bench.test.", n); err != nil || nrr != 3+2*n {
		t.Fatalf("WriteZone: %d, %v", nrr, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, i := range []int{0, 1, 254, 255, 256, 65535, 65536, n - 1} {
		want := Host(i) + " IN A " + HostA(i).String() + "\n" + Host(i) + " IN AAAA " + HostAAAA(i).String() + "\n"
		if !strings.Contains(text, want) {
			t.Errorf("zone lacks %q", want)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {100, 10}, {1, 1}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Median(xs); got != 5.5 {
		t.Errorf("Median = %v", got)
	}
	if Percentile(nil, 50) != 0 || Median(nil) != 0 {
		t.Error("empty input")
	}
}

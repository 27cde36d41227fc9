package loader

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// version returns testdata/xdp.test.zone with short.xdp.test's address
// ending in n.
func version(t testing.TB, n int) *zone.Zone {
	t.Helper()
	text, err := os.ReadFile("testdata/xdp.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "short\tIN A 198.18.0.1", fmt.Sprintf("short\tIN A 198.18.7.%d", n), 1)
	if s == string(text) {
		t.Fatal("zone text changed: no short A record")
	}
	z, _, err := zone.Parse(strings.NewReader(s), "xdp.test.zone", "xdp.test.", zone.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func image(t testing.TB, zs ...*zone.Zone) *Image {
	t.Helper()
	entries, err := Zones(zs...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := BuildImage(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func answerOf(t testing.TB, z *zone.Zone, query []byte) []byte {
	r := responder.New(responder.Config{})
	r.SetZones([]*zone.Zone{z})
	return frame{}.response(r.Respond(&responder.Scratch{}, nil, query, false))
}

// TestGenerations flips between full loads while another goroutine keeps
// asking: every answer is the old or the new one, none is passed.
func TestGenerations(t *testing.T) {
	requireRoot(t)
	x, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	query := q(t, "short.xdp.test.", dns.TypeA, ednsDO)
	pkt := frame{}.build(query)
	if ret, _ := run(t, x.Program(), pkt); ret != xdpPass {
		t.Fatalf("verdict %d before any load, want pass", ret)
	}

	const flips = 20
	answers := make([][]byte, flips+1)
	images := make([]*Image, flips+1)
	for i := range answers {
		z := version(t, i)
		answers[i] = answerOf(t, z, query)
		images[i] = image(t, z)
	}
	if err := x.Load(images[0]); err != nil {
		t.Fatal(err)
	}
	var current atomic.Int32 // the newest version loaded
	var stop atomic.Bool
	var wg sync.WaitGroup
	var asked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			lo := current.Load()
			ret, out := run(t, x.Program(), pkt)
			hi := current.Load()
			asked.Add(1)
			if ret != xdpTx {
				t.Errorf("verdict %d during reloads", ret)
				return
			}
			// current is set after Load flips: the version served
			// was lo at the start and at most hi+1 at the end.
			ok := false
			for v := lo; v <= min(hi+1, flips); v++ {
				ok = ok || string(out) == string(answers[v])
			}
			if !ok {
				t.Errorf("answer from no version in [%d, %d]:\n%s", lo, hi+1, hexDiff(out, answers[hi]))
				return
			}
		}
	}()
	for i := 1; i <= flips; i++ {
		if err := x.Load(images[i]); err != nil {
			t.Fatal(err)
		}
		current.Store(int32(i))
		if ret, out := run(t, x.Program(), pkt); ret != xdpTx || string(out) != string(answers[i]) {
			t.Fatalf("after load %d: verdict %d\n%s", i, ret, hexDiff(out, answers[i]))
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d flips under %d queries", flips, asked.Load())
	if x.gens[1-x.active] != nil {
		t.Error("old generation kept")
	}
	var id uint32
	if err := x.objs.AnswerBuckets.Lookup(uint32(1-x.active), &id); err == nil {
		t.Error("old generation still published")
	}
}

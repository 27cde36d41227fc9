package loader

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TestRecordLayout: encodeRecord writes what the generated struct reads.
func TestRecordLayout(t *testing.T) {
	name, _ := wireName("www.example.com.")
	e := compile.Entry{Name: name, Type: dns.TypeAAAA, Body: wire.Body{
		Rcode: 3, AA: true, An: 0x0102, Ns: 0x0304, Ar: 0x0506, Bytes: []byte{1, 2, 3, 4, 5},
	}}
	rec := make([]byte, recordLen(&e))
	encodeRecord(rec, &e)
	var a xdpnsAnswer
	if err := binary.Read(bytes.NewReader(rec), binary.LittleEndian, &a); err != nil {
		t.Fatal(err)
	}
	want := xdpnsAnswer{BodyLen: 5, Flags: 3 | answerAA, An: htons(0x0102), Ns: htons(0x0304), Ar: htons(0x0506),
		Qtype: dns.TypeAAAA, Csum: bodySum(e.Body.Bytes), NameLen: uint8(len(name))}
	if a != want {
		t.Errorf("header %+v, want %+v", a, want)
	}
	pad := (len(name) + 7) / 8 * 8
	if !bytes.Equal(rec[answerHdrLen:answerHdrLen+len(name)], name) || !bytes.Equal(rec[answerHdrLen+pad:answerHdrLen+pad+5], e.Body.Bytes) {
		t.Errorf("record bytes %x", rec)
	}
	if len(rec)%storeAlign != 0 {
		t.Errorf("record of %d bytes", len(rec))
	}
}

// TestBodySum: the stored sum is the network sum read in host order, so
// XDP can add it to sums of host-order loads.
func TestBodySum(t *testing.T) {
	for _, b := range [][]byte{{}, {0xab}, {0x12, 0x34}, {0xff, 0xff, 0xff}, bytes.Repeat([]byte{0xfe, 0x01, 0x77}, 101)} {
		if got, want := bodySum(b), fold(sum16(b)); got != htons(want) && !(got == 0xffff && want == 0xffff) {
			t.Errorf("bodySum(%x) = %#04x, want %#04x swapped", b, got, want)
		}
	}
}

// TestImageRefs: refs point at their records, blocks never overflow, DO=1
// refs follow the zone's signedness.
func TestImageRefs(t *testing.T) {
	name, _ := wireName("a.example.")
	var es []compile.Entry
	for i := range 3000 {
		es = append(es, compile.Entry{Name: name, Type: uint16(i + 1), Body: wire.Body{Bytes: make([]byte, i%700)}})
	}
	im, err := BuildImage(ZoneEntries{Entries: es}, ZoneEntries{Signed: true, Entries: []compile.Entry{{Name: name, Type: 9999}}})
	if err != nil {
		t.Fatal(err)
	}
	if im.Blocks() < 2 {
		t.Fatalf("%d blocks: the test wants records across blocks", im.Blocks())
	}
	n := 0
	im.ix.each(func(_ uint64, v xdpnsIndexVal) {
		n++
		off := int(v.Ref[0]>>refBlockShift)*storeValueLen + int(v.Ref[0]&(1<<refBlockShift-1))*storeAlign
		if int(v.Ref[0]&(1<<refBlockShift-1))*storeAlign >= storeBlockLen {
			t.Fatalf("record %#x starts past the block's addressable part", v.Ref[0])
		}
		blen := int(binary.LittleEndian.Uint16(im.a.mem[off:]))
		qtype := binary.LittleEndian.Uint16(im.a.mem[off+10:])
		end := off%storeValueLen + answerHdrLen + 16 + blen
		if end > storeValueLen {
			t.Fatalf("record %#x ends at %d in its block", v.Ref[0], end)
		}
		// The index numbers zones in the order given, from 1.
		switch {
		case qtype >= 1 && qtype <= 3000:
			if v.Ref[1] != v.Ref[0] || v.Zone != 1 {
				t.Fatalf("qtype %d: refs %v, zone %d", qtype, v.Ref, v.Zone)
			}
		case qtype == 9999:
			if v.Ref[1] != refNone || v.Zone != 2 {
				t.Errorf("signed zone without a DO=1 entry: refs %v, zone %d; want no DO=1 ref, zone 2", v.Ref, v.Zone)
			}
		default:
			t.Errorf("qtype %d", qtype)
		}
	})
	if n != 3001 || im.Entries != n {
		t.Errorf("%d keys, %d entries counted, want 3001", n, im.Entries)
	}
}

// TestZonesLongestOrigin: a parent's glue for a served child zone is left to
// the child.
func TestZonesLongestOrigin(t *testing.T) {
	parent, _, err := zone.Parse(strings.NewReader(`$ORIGIN example.
@ SOA ns h 1 1 1 1 1
@ NS ns
ns A 198.18.0.1
child NS ns.child
ns.child A 198.18.0.2
`), "parent", "example.", zone.LoadOptions{DefaultTTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err := zone.Parse(strings.NewReader(`$ORIGIN child.example.
@ SOA ns h 1 1 1 1 1
@ NS ns
ns A 198.18.0.2
`), "child", "child.example.", zone.LoadOptions{DefaultTTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	zes, err := Zones(parent, child)
	if err != nil {
		t.Fatal(err)
	}
	glue, _ := wireName("ns.child.example.")
	count := func(z ZoneEntries) (n int) {
		for _, e := range z.Entries {
			if bytes.Equal(e.Name, glue) {
				n++
			}
		}
		return n
	}
	if count(zes[0]) != 0 || count(zes[1]) == 0 {
		t.Errorf("ns.child.example entries: %d in the parent, %d in the child", count(zes[0]), count(zes[1]))
	}
	if _, err := Zones(parent, parent); err == nil {
		t.Error("a zone given twice was accepted")
	}
}

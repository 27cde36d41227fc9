package zone

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// The stored form of a zone is its nodes as they are held in memory: name
// and the wire-form RRsets (Node.data). A secondary restarts from it
// without building a record object per record and packing it again, which
// was most of a restart's load time: a state file holds wire records, New
// wants dns.RR, and the node stores wire records again.

// StoredNode is one node of a zone in stored form. Only nodes with data
// are stored: empty non-terminals are derived again.
type StoredNode struct {
	Name  string // canonical
	NSEC3 bool   // an NSEC3 owner: a link of the chain, not a name of the tree
	Data  []byte // the node's RRsets, see encodeSets
}

// EachStored calls fn for every node with data, the NSEC3 chain last, until
// fn returns an error. data is the zone's own: read it, never write it.
func (z *Zone) EachStored(fn func(name string, nsec3 bool, data []byte) error) error {
	var err error
	z.nodes.Range(func(name string, n *Node) bool {
		if len(n.data) > 0 {
			err = fn(name, false, n.data)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	for _, e := range z.n3 {
		if err := fn(e.node.Name, true, e.node.data); err != nil {
			return err
		}
	}
	return nil
}

// StoredCount is how many nodes EachStored visits.
func (z *Zone) StoredCount() int {
	c := len(z.n3)
	z.nodes.Range(func(_ string, n *Node) bool {
		if len(n.data) > 0 {
			c++
		}
		return true
	})
	return c
}

// FromStored builds a zone from what EachStored gave out, taking ownership
// of the nodes' data. The stored form comes from a zone New or Apply
// validated, behind a checksum, so the records are not checked again; what
// would make the engine misread memory is: every name lies in the zone and
// is canonical, every node's RRsets parse in bounds, in type order.
func FromStored(origin string, nodes []StoredNode, opt Options) (*Zone, error) {
	origin = dns.CanonicalName(origin)
	z := &Zone{Origin: origin, order: &nameOrder{}, id: versions.Add(1)}
	slab := make([]Node, len(nodes))
	list := make([]*Node, 0, len(nodes))
	for i, sn := range nodes {
		if err := checkStored(origin, sn); err != nil {
			return nil, err
		}
		n := &slab[i]
		n.Name, n.data = sn.Name, sn.Data
		if sn.NSEC3 {
			h, _, _ := strings.Cut(sn.Name, ".")
			z.n3 = append(z.n3, nsec3Entry{hash: h, node: n})
			continue
		}
		list = append(list, n)
	}
	if err := z.index(list, opt); err != nil {
		return nil, err
	}
	return z, nil
}

func checkStored(origin string, sn StoredNode) error {
	name := sn.Name
	bad := func(format string, args ...any) error {
		return fmt.Errorf("stored node %q: %s", name, fmt.Sprintf(format, args...))
	}
	if !under(origin, name) || !dns.IsFqdn(name) {
		return bad("not in zone %s", origin)
	}
	if strings.ToLower(name) != name { // allocates only when it is not lowercase
		return bad("not canonical")
	}
	if sn.NSEC3 && (name == origin || parent(name) != origin) {
		return bad("NSEC3 owner not one label below the apex")
	}
	if len(sn.Data) == 0 {
		return bad("no data")
	}
	return checkData(sn.Data, sn.NSEC3)
}

// checkData walks the layout encodeSets writes, with the bounds checks
// setAt leaves out.
func checkData(d []byte, nsec3 bool) error {
	var last uint16
	for off, i := 0, 0; off < len(d); i++ {
		if len(d)-off < setHeaderLen {
			return errors.New("stored node: set header cut short")
		}
		t := binary.BigEndian.Uint16(d[off:])
		if i > 0 && t <= last {
			return errors.New("stored node: sets out of type order")
		}
		if nsec3 && (i > 0 || t != dns.TypeNSEC3) {
			return errors.New("stored node: an NSEC3 node holds only its NSEC3 set")
		}
		last = t
		nrr := int(binary.BigEndian.Uint16(d[off+6:]))
		nsig := int(binary.BigEndian.Uint16(d[off+8:]))
		if nrr == 0 && nsig == 0 {
			return errors.New("stored node: empty set")
		}
		p := off + setHeaderLen
		for range nrr {
			if len(d)-p < 2 {
				return errors.New("stored node: record cut short")
			}
			l := int(binary.BigEndian.Uint16(d[p:]))
			if len(d)-p-2 < l {
				return errors.New("stored node: record cut short")
			}
			if err := checkRdata(t, d[p+2:p+2+l]); err != nil {
				return err
			}
			p += 2 + l
		}
		for range nsig {
			if len(d)-p < 6 {
				return errors.New("stored node: signature cut short")
			}
			l := int(binary.BigEndian.Uint16(d[p+4:]))
			if len(d)-p-6 < l {
				return errors.New("stored node: signature cut short")
			}
			if err := checkRdata(dns.TypeRRSIG, d[p+6:p+6+l]); err != nil {
				return err
			}
			p += 6 + l
		}
		off = p
	}
	return nil
}

// checkRdata makes sure rdata reads back as Node.record will read it (it
// panics otherwise: stored bytes are trusted there). Addresses, most of a
// large zone, need only their length.
func checkRdata(t uint16, rdata []byte) error {
	switch t {
	case dns.TypeA:
		if len(rdata) == 4 {
			return nil
		}
	case dns.TypeAAAA:
		if len(rdata) == 16 {
			return nil
		}
	}
	h := dns.RR_Header{Name: ".", Rrtype: t, Class: dns.ClassINET, Rdlength: uint16(len(rdata))}
	if _, _, err := dns.UnpackRRWithHeader(h, rdata, 0); err != nil {
		return fmt.Errorf("stored node: %s record does not unpack: %v", dns.TypeToString[t], err)
	}
	return nil
}

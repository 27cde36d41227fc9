package loader

import (
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Signed NXDOMAIN for NSEC zones (bpf/nsec3.h nsec_nxd, compile's
// nsecnxd.go): per zone whose table composes them, the signed head behind
// a slot (as for NSEC3 zones), one piece per NSEC record (a shared record:
// the NSEC and its RRSIGs, uncompressed), and per closest encloser an
// entry in the generation's nsec_ces map, by its index key, naming the
// range of the NSEC3 array that holds its children's label keys, each
// with the piece covering the gap after that child. XDP places the next
// closer label among them.
//
// Updates: as for NSEC3 zones, a change that leaves every NSEC record as
// it was is applied in place; one that touches the chain reloads the zone
// into a new generation. A change that adds or removes a name without
// touching the chain (a zone signed badly) keeps the gaps' pieces right:
// the NSEC covering a gap depends on the chain alone, and a QNAME whose
// label equals a child's passes.

// nsecState is an NSEC zone's part of its nsec3State.
type nsecState struct {
	proofs *compile.NSECProofs
	refs   []uint32        // the pieces' records, as proofs.Pieces
	ces    map[string]bool // proofs.Enclosers' names, made when first asked
}

// nsecNewEncloser reports whether a change to an NSEC zone marks a name
// as a closest encloser (a DO=1 default entry saying NXD or Wild) that zs has no
// encloser entry for. Applied in place, XDP would pass the names below it:
// the change goes into a new generation instead, which has it.
func nsecNewEncloser(zs *zoneState, ch *compile.Changes) bool {
	if zs.n3 == nil || zs.n3.nsec == nil {
		return false
	}
	st := zs.n3.nsec
	for i := range ch.Put {
		e := &ch.Put[i]
		if !(e.NXD || e.Wild) || !e.DO || e.Type != compile.TypeDefault {
			continue
		}
		if st.ces == nil {
			st.ces = make(map[string]bool, len(st.proofs.Enclosers))
			for _, c := range st.proofs.Enclosers {
				st.ces[string(c.Name)] = true
			}
		}
		if !st.ces[string(e.Name)] {
			return true
		}
	}
	return false
}

// nsecFor returns z's NSEC data (the zone composes its signed NXDOMAIN).
func nsecFor(z *zone.Zone) *NSEC3Data {
	head, err := compile.SignedNXDomainHead(z)
	if err != nil {
		return nil
	}
	p := compile.NSECEnclosers(z)
	if p == nil || len(p.Pieces) == 0 {
		return nil
	}
	return &NSEC3Data{Head: head, NSEC: p}
}

// addNSEC writes an NSEC zone's pieces; slot is its head's.
func (c *answers) addNSEC(zs *zoneState, slot uint32, p *compile.NSECProofs) error {
	st := &nsecState{proofs: p, refs: make([]uint32, len(p.Pieces))}
	for i := range p.Pieces {
		b := p.Pieces[i].Piece
		if len(b.Bytes) == 0 || len(b.Bytes) > maxBodyLen {
			return nil // a piece XDP cannot copy: Go answers the zone's
		}
		ref, err := writeShared(c.a, b)
		if err != nil {
			return err
		}
		st.refs[i] = ref
	}
	zs.n3 = &nsec3State{slot: slot, nsec: st}
	return nil
}

// entries appends the zone's enclosers to a generation's maps: children
// to the array, the enclosers to the nsec_ces keys and values.
func (st *nsecState) entries(zs *zoneState, ents []xdpnsNsec3Entry, keys []uint64, vals []xdpnsNsecCe) ([]xdpnsNsec3Entry, []uint64, []xdpnsNsecCe) {
	for _, e := range st.proofs.Enclosers {
		v := xdpnsNsecCe{
			HeadSlot: zs.n3.slot, Base: uint32(len(ents)), Count: uint32(len(e.Kids)),
			SelfRef: st.refs[e.Self], WildRef: st.refs[e.Wild], Zone: zs.id,
		}
		for _, k := range e.Kids {
			ents = append(ents, xdpnsNsec3Entry{Hash: labelKey(k.Label), Ref: st.refs[k.Gap]})
		}
		keys = append(keys, keyHash(e.Name, compile.TypeDefault))
		vals = append(vals, v)
	}
	return ents, keys, vals
}

// nsecLabelPrefix is NSEC_LABEL_PREFIX (bpf/abi.h).
const nsecLabelPrefix = 19

// labelKey is a child label's key in the NSEC3 array: its first
// nsecLabelPrefix bytes, zero-padded, then its length (struct nsec_ce).
func labelKey(label []byte) [20]byte {
	var k [20]byte
	copy(k[:nsecLabelPrefix], label)
	k[nsecLabelPrefix] = byte(len(label))
	return k
}

// uniqueKeys drops every encloser whose key another has too (a hash
// collision): its names pass to Go.
func uniqueKeys(keys []uint64, vals []xdpnsNsecCe) ([]uint64, []xdpnsNsecCe) {
	seen := make(map[uint64]int, len(keys))
	for _, k := range keys {
		seen[k]++
	}
	ok, ov := keys[:0], vals[:0]
	for i, k := range keys {
		if seen[k] == 1 {
			ok, ov = append(ok, k), append(ov, vals[i])
		}
	}
	return ok, ov
}

// nsecChanged reports whether z's NSEC records differ from those st's
// pieces were made from: another owner, or another NSEC RRset or RRSIG at
// one (a node a change touched is compared by its bytes).
func nsecChanged(st *nsecState, z *zone.Zone) bool {
	i, changed := 0, false
	z.EachNSEC(func(n *zone.Node) {
		if changed || i >= len(st.proofs.Pieces) {
			changed = true
			return
		}
		p := &st.proofs.Pieces[i]
		i++
		if p.Node == n {
			return
		}
		b, ok := compile.NSECPiece(n)
		changed = !ok || n.Name != p.Node.Name || string(b.Bytes) != string(p.Piece.Bytes) || b.Ns != p.Piece.Ns
	})
	return changed || i != len(st.proofs.Pieces)
}

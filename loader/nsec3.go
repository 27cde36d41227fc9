package loader

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Signed NXDOMAIN for NSEC3 zones (bpf/nsec3.h, compile's nsec3nxd.go): per
// zone whose table composes them, the signed head (SOA and RRSIGs) behind a
// slot like the other shared negative bodies, one piece per NSEC3 record (a
// shared record: the NSEC3 and its RRSIGs, uncompressed), and per
// generation two maps: every such zone's entries (hash, piece ref) in one
// array, each zone's a sorted range, and the zones' parameters (salt,
// range, head slot) by zone slot. XDP hashes the names a QNAME's proof
// needs and searches the range.
//
// Updates: a change that leaves the zone's NSEC3 records as they were (an
// address changed and re-signed, a new SOA) is applied in place like any
// other, the head flipped with the other shared bodies; one that touches
// the chain (a name added or removed, the chain re-signed) reloads the
// zone (a new generation, the other zones copied), since ranges would
// have to move. docs/xdp.md, "Signed negatives".

const answerNXD3 = 0x2000 // ANSWER_NXD3

// nsec3MaxIterations is NSEC3_MAX_ITERATIONS (bpf/abi.h).
const nsec3MaxIterations = compile.NSEC3MaxIterations

// NSEC3Data is what XDP needs of a zone whose signed NXDOMAIN answers are
// composed: compile.NSEC3Composes (Salt, Chain), or compile.NSECComposes
// (NSEC: the zone's closest enclosers, nsec.go).
type NSEC3Data struct {
	Salt       []byte
	Iterations uint16
	Head       wire.Body // compile.SignedNXDomainHead
	Chain      []compile.NSEC3Entry
	Enclosers  []compile.NSEC3Encloser // pieces fixed per closest encloser, by Chain index
	NSEC       *compile.NSECProofs
}

// nsec3For returns z's NSEC3 (or NSEC) data when its answers say so: the
// table composes them (t, when given), else compile decides as it
// compiles.
func nsec3For(z *zone.Zone, t *compile.Table) *NSEC3Data {
	if t != nil && t.NSECComposed() || t == nil && compile.NSECComposes(z) {
		return nsecFor(z)
	}
	if t != nil && !t.NSEC3Composed() || t == nil && !compile.NSEC3Composes(z) {
		return nil
	}
	head, err := compile.SignedNXDomainHead(z)
	if err != nil {
		return nil
	}
	salt, chain := compile.NSEC3Chain(z)
	if len(chain) == 0 || len(salt) > compile.NSEC3MaxSalt {
		return nil
	}
	return &NSEC3Data{Salt: salt, Iterations: z.NSEC3.Iterations, Head: head, Chain: chain, Enclosers: compile.NSEC3Enclosers(z, chain)}
}

// nsec3State is a zone's NSEC3 part of a store.
type nsec3State struct {
	salt []byte
	iter uint16
	slot uint32 // the head's slot (a shared body, compile.NXD3Key)
	ents []nsec3Ent
	ces  []compile.NSEC3Encloser // Match and Wild index ents
	nsec *nsecState              // an NSEC zone's instead of ents (nsec.go)
}

type nsec3Ent struct {
	hash [20]byte
	ref  uint32     // the piece
	node *zone.Node // the zone's NSEC3 node it was made from (nsec3Same)
}

// addNSEC3 writes a zone's head and pieces.
func (c *answers) addNSEC3(zs *zoneState, d *NSEC3Data) error {
	if len(d.Head.Bytes) > maxBodyLen {
		return nil // never answered from XDP: leave the zone to Go
	}
	head, err := c.sharedFor(zs, compile.NXD3Key, d.Head)
	if err != nil {
		return err
	}
	head.members++ // held by the zone, not by link records
	if d.NSEC != nil {
		return c.addNSEC(zs, head.slot, d.NSEC)
	}
	st := &nsec3State{salt: d.Salt, iter: d.Iterations, slot: head.slot, ents: make([]nsec3Ent, 0, len(d.Chain)), ces: d.Enclosers}
	for i := range d.Chain {
		e := &d.Chain[i]
		if len(e.Piece.Bytes) == 0 || len(e.Piece.Bytes) > maxBodyLen {
			// A piece XDP cannot copy: no zone answer either.
			return nil
		}
		ref, err := writeShared(c.a, e.Piece)
		if err != nil {
			return err
		}
		st.ents = append(st.ents, nsec3Ent{hash: e.Hash, ref: ref, node: e.Node})
	}
	zs.n3 = st
	return nil
}

// copyNSEC3 copies zone k's NSEC3 state from g's store into im (imageFrom).
func (im *Image) copyNSEC3(g *generation, from, to *zoneState) error {
	st := from.n3
	old := g.slots[st.slot]
	if old == nil {
		return fmt.Errorf("zone %s: unknown NSEC3 head slot %#x", from.origin, st.slot)
	}
	d := &NSEC3Data{Salt: st.salt, Iterations: st.iter, Head: old.body, Chain: make([]compile.NSEC3Entry, len(st.ents)), Enclosers: st.ces}
	if st.nsec != nil {
		d.NSEC = st.nsec.proofs
	}
	for i, e := range st.ents {
		rec := g.a.at(e.ref)
		l := int(binary.LittleEndian.Uint16(rec[0:]))
		d.Chain[i] = compile.NSEC3Entry{Hash: e.hash, Node: e.node, Piece: wire.Body{
			Ns:    binary.BigEndian.Uint16(rec[6:]),
			Bytes: append([]byte(nil), rec[answerHdrLen:answerHdrLen+l]...),
		}}
	}
	before := len(im.slots)
	if err := im.addNSEC3(to, d); err != nil {
		return err
	}
	im.Shared += len(im.slots) - before
	im.Records += len(im.slots) - before + d.pieces()
	return nil
}

// pieces is how many piece records d holds.
func (d *NSEC3Data) pieces() int {
	if d.NSEC != nil {
		return len(d.NSEC.Pieces)
	}
	return len(d.Chain)
}

// markNXD3 flags a DO=1 default entry's record whose names below get the
// composed signed NXDOMAIN (compile.Entry.NXD).
func markNXD3(a *arena, zs *zoneState, e *compile.Entry, ref uint32) {
	if zs.n3 == nil || !e.NXD || !e.DO || e.Type != compile.TypeDefault {
		return
	}
	rec := a.at(ref)
	le := binary.LittleEndian
	le.PutUint16(rec[2:], le.Uint16(rec[2:])|answerNXD3)
}

// nsec3Maps makes a generation's three NSEC3 and NSEC maps from its zones:
// the array (NSEC3 hashes and NSEC enclosers' children), the NSEC3 zones'
// parameters, and the NSEC zones' enclosers.
func (x *XDP) nsec3Maps(zones map[string]*zoneState) (hashes, params, ces *ebpf.Map, err error) {
	var ents []xdpnsNsec3Entry
	var keys []uint32
	var vals []xdpnsNsec3Zone
	var ceKeys []uint64
	var ceVals []xdpnsNsecCe
	for _, zs := range zones {
		if zs.n3 == nil || zs.id == 0 {
			continue
		}
		if zs.n3.nsec != nil {
			ents, ceKeys, ceVals = zs.n3.nsec.entries(zs, ents, ceKeys, ceVals)
			continue
		}
		v := xdpnsNsec3Zone{HeadSlot: zs.n3.slot, Base: uint32(len(ents)), Count: uint32(len(zs.n3.ents)), SaltLen: uint32(len(zs.n3.salt)), Iterations: uint32(zs.n3.iter)}
		copy(v.Salt[:], zs.n3.salt)
		for _, e := range zs.n3.ents {
			ents = append(ents, xdpnsNsec3Entry{Hash: e.hash, Ref: e.ref})
		}
		for _, c := range zs.n3.ces {
			// The two pieces that depend on the encloser only (nsec3.h
			// nsec3_nxd then hashes the next closer name alone).
			ceKeys = append(ceKeys, keyHash(c.Name, compile.TypeDefault))
			ceVals = append(ceVals, xdpnsNsecCe{HeadSlot: zs.n3.slot, SelfRef: zs.n3.ents[c.Match].ref, WildRef: zs.n3.ents[c.Wild].ref, Zone: zs.id})
		}
		keys = append(keys, zs.id)
		vals = append(vals, v)
	}
	ceKeys, ceVals = uniqueKeys(ceKeys, ceVals)
	var maps []*ebpf.Map
	fail := func(err error) (*ebpf.Map, *ebpf.Map, *ebpf.Map, error) {
		for _, m := range maps {
			m.Close()
		}
		return nil, nil, nil, err
	}
	for _, m := range []struct {
		spec *ebpf.MapSpec
		n    int
		what string
	}{{x.nsec3HashSpec, len(ents), "NSEC3 array"}, {x.nsec3ZoneSpec, len(keys), "NSEC3 zone map"}, {x.nsecCeSpec, len(ceKeys), "NSEC encloser map"}} {
		spec := m.spec.Copy()
		spec.MaxEntries = uint32(max(m.n, 1))
		mp, err := ebpf.NewMap(spec)
		if err != nil {
			return fail(fmt.Errorf("create %s of %d entries: %w", m.what, spec.MaxEntries, permission(err)))
		}
		maps = append(maps, mp)
	}
	hashes, params, ces = maps[0], maps[1], maps[2]
	if len(ents) > 0 {
		idx := make([]uint32, len(ents))
		for i := range idx {
			idx[i] = uint32(i)
		}
		if err := batchUpdate(hashes, idx, ents); err != nil {
			return fail(fmt.Errorf("write NSEC3 array: %w", err))
		}
	}
	if err := batchUpdate(params, keys, vals); err != nil {
		return fail(fmt.Errorf("write NSEC3 zones: %w", err))
	}
	if err := batchUpdate(ces, ceKeys, ceVals); err != nil {
		return fail(fmt.Errorf("write NSEC enclosers: %w", err))
	}
	return hashes, params, ces, nil
}

// batchUpdate writes keys and vals to m in batches.
func batchUpdate[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	const batch = 1 << 14
	for i := 0; i < len(keys); i += batch {
		end := min(i+batch, len(keys))
		if _, err := m.BatchUpdate(keys[i:end], vals[i:end], nil); err != nil {
			return err
		}
	}
	return nil
}

// nsec3Changed reports whether z's NSEC3 (or NSEC) state in XDP would
// differ from what zs holds: composed now and not before or the other way
// round, another salt, or another NSEC3 record (nodes are shared between
// versions of a zone where a change did not touch them, so comparing them
// is enough); for NSEC zones, another NSEC record (nsecChanged).
func nsec3Changed(zs *zoneState, z *zone.Zone) bool {
	nsec := compile.NSECComposes(z)
	composes := !nsec && compile.NSEC3Composes(z)
	if had := zs.n3 != nil && zs.n3.nsec != nil; nsec || had {
		return nsec != had || nsecChanged(zs.n3.nsec, z)
	}
	if zs.n3 == nil || !composes {
		return composes != (zs.n3 != nil)
	}
	salt, _ := compile.NSEC3Salt(z)
	if string(salt) != string(zs.n3.salt) || z.NSEC3.Iterations != zs.n3.iter {
		return true
	}
	i, changed := 0, false
	z.EachNSEC3(func(_ string, n *zone.Node) {
		if i >= len(zs.n3.ents) || zs.n3.ents[i].node != n {
			changed = true
		}
		i++
	})
	return changed || i != len(zs.n3.ents)
}

// updateNSEC3 applies a change to zone origin whose NSEC3 records changed:
// a new generation with every zone copied, the zone's NSEC3 state made
// from z, then the change's plan applied to it, as for a generation out
// of room. The entries stay those of the Go table (the plan), the chain
// is z's.
func (x *XDP) updateNSEC3(g *generation, z *zone.Zone, origin string, plan []*keyChange, extraBytes int, negatives map[int]wire.Body, seq uint64, res *UpdateResult) error {
	im, err := imageFromWith(g, "", origin)
	if err != nil {
		return err
	}
	if d := nsec3For(z, nil); d != nil {
		if err := im.addNSEC3(im.zones[origin], d); err != nil {
			return err
		}
	}
	ng, err := x.build(im, len(plan), extraBytes)
	if err != nil {
		return err
	}
	if err := apply(ng, ng.zones[origin], plan, negatives, seq, res); err != nil {
		ng.close()
		if errors.Is(err, errInconsistent) {
			return x.reloadZone(g, z, origin, nil)
		}
		return err
	}
	return x.publish(ng)
}

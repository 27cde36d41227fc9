package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Errors of UpdateZone.
var (
	// ErrNotLoaded: this process has not loaded answers yet (a generation
	// adopted from pins is served as it is): call LoadZones first.
	ErrNotLoaded = errors.New("no answers loaded by this process")
	// ErrUnknownZone: the zone is not among those last given to LoadZones.
	ErrUnknownZone = errors.New("zone not loaded in xdp")
)

// UpdateResult says what UpdateZone did.
type UpdateResult struct {
	Keys       int  // index entries written or removed
	Records    int  // records written
	Shared     int  // shared negative bodies replaced (a new SOA)
	Collisions int  // entries left to Go: their key hash is another entry's
	Reloaded   bool // a new generation was built and flipped to
}

// UpdateZone makes z's answers the ones served, from the changes
// responder.CompileFrom (compile.Update) reported against the version
// loaded before. Only what changed is written, into the served maps: each
// new record first, then the index entry pointing at it, so a query sees a
// name's old answer or its new one, never a torn record or a miss; replaced
// records are reused only after an RCU grace period. A new SOA rewrites one
// shared negative body per QNAME length. ch nil (compiled afresh) or Full,
// a zone that became signed or unsigned, or maps out of room: a new
// generation is built (the other zones' records copied, z's written anew)
// and flipped to, as Load does.
//
// z must be one of the zones last given to LoadZones (ErrUnknownZone);
// adding or removing zones is LoadZones with the new set.
func (x *XDP) UpdateZone(z *zone.Zone, ch *compile.Changes) (UpdateResult, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var res UpdateResult
	if x.active < 0 || x.gens[x.active].answers == nil {
		return res, ErrNotLoaded
	}
	g := x.gens[x.active]
	w, err := wireName(z.Origin)
	if err != nil {
		return res, err
	}
	origin := string(w)
	zs := g.zones[origin]
	if zs == nil {
		return res, fmt.Errorf("%s: %w", z.Origin, ErrUnknownZone)
	}
	if ch == nil || ch.Full || z.Signed != zs.signed {
		res.Reloaded = true
		return res, x.reloadZone(g, z, origin, ch)
	}
	plan, extraBytes := planChanges(g.zones, origin, ch)
	if b, err := compile.NXDomainBody(z); err == nil {
		zs.nxd = b // for a first NXDOMAIN record; an existing one is flipped
	}
	if nsec3Changed(zs, z) || nsecNewEncloser(zs, ch) {
		// The NSEC3 or NSEC records changed, or an NSEC zone has a new
		// closest encloser (nsec3.go, nsec.go): the change goes into a
		// new generation, with the zone's state made anew.
		res = UpdateResult{Reloaded: true}
		return res, x.updateNSEC3(g, z, origin, plan, extraBytes, ch.Negatives, g.seq+1, &res)
	}
	seq := g.seq + 1
	err = apply(g, zs, plan, ch.Negatives, seq, &res)
	if errors.Is(err, errNoRoom) {
		// Partly applied: still every name old or new. A bigger
		// generation gets the rest (applying again is harmless).
		res = UpdateResult{Reloaded: true}
		im, err := imageFrom(g, "")
		if err != nil {
			return res, err
		}
		ng, err := x.build(im, len(plan), extraBytes)
		if err != nil {
			return res, err
		}
		if err := apply(ng, ng.zones[origin], plan, ch.Negatives, seq, &res); err != nil {
			ng.close()
			if errors.Is(err, errInconsistent) {
				return res, x.reloadZone(g, z, origin, nil)
			}
			return res, err
		}
		return res, x.publish(ng)
	}
	if errors.Is(err, errInconsistent) {
		res.Reloaded = true
		return res, x.reloadZone(g, z, origin, nil)
	}
	if err != nil {
		return res, err
	}
	// Replaced records become reusable after a grace period (about 8 ms
	// here). Waiting for one now, after the new answers are served, keeps
	// the next update from waiting before it can publish anything.
	if p := g.a.pendBytes; p > 0 && (p > storeBlockLen || g.a.spare() < 4*p) {
		if err := x.grace(); err != nil {
			return res, err
		}
		g.a.settle()
	}
	return res, nil
}

// reloadZone serves z from a new generation: every other zone's records
// copied from g, z's compiled anew (ch.Put when Full, else compile.Each).
func (x *XDP) reloadZone(g *generation, z *zone.Zone, origin string, ch *compile.Changes) error {
	ze := ZoneEntries{Origin: z.Origin, Signed: z.Signed, NSEC3: nsec3For(z, nil)}
	if b, err := compile.NXDomainBody(z); err == nil {
		ze.NXDomain = b
	}
	keep := func(e *compile.Entry) error {
		if o, _ := servedBy(g.zones, e.Name); o == origin {
			ze.Entries = append(ze.Entries, *e)
		}
		return nil
	}
	if ch != nil && ch.Full {
		for i := range ch.Put {
			keep(&ch.Put[i])
		}
	} else if err := compile.Each(z, keep); err != nil {
		return fmt.Errorf("compile %s: %w", z.Origin, err)
	}
	im, err := imageFrom(g, origin)
	if err != nil {
		return err
	}
	if err := im.addZone(&ze); err != nil {
		return err
	}
	ng, err := x.build(im, 0, 0)
	if err != nil {
		return err
	}
	return x.publish(ng)
}

// servedBy returns the lowercased wire origin of the zone with the longest
// origin enclosing the wire name, and its state.
func servedBy(zones map[string]*zoneState, name []byte) (string, *zoneState) {
	for off := 0; off < len(name); off += int(name[off]) + 1 {
		if z, ok := zones[string(name[off:])]; ok {
			return string(name[off:]), z
		}
		if name[off] == 0 {
			break
		}
	}
	return "", nil
}

// keyChange is what changes at one index key: records for DO=0 and DO=1
// to write, or to remove.
type keyChange struct {
	hash  uint64
	name  []byte
	qtype uint16
	put   [2]*compile.Entry
	del   [2]bool
}

// planChanges groups ch by index key, leaving out names a more specific
// served zone answers, and returns the bytes the new records need at most.
func planChanges(zones map[string]*zoneState, origin string, ch *compile.Changes) ([]*keyChange, int) {
	byHash := map[uint64]*keyChange{}
	var plan []*keyChange
	get := func(name []byte, qtype uint16) *keyChange {
		if o, _ := servedBy(zones, name); o != origin {
			return nil
		}
		h := keyHash(name, qtype)
		kc := byHash[h]
		if kc == nil {
			kc = &keyChange{hash: h, name: name, qtype: qtype}
			byHash[h] = kc
			plan = append(plan, kc)
		} else if kc.qtype != qtype || !bytes.Equal(kc.name, name) {
			return nil // two names, one hash: the first one's
		}
		return kc
	}
	for _, k := range ch.Del {
		if kc := get([]byte(k.Name), k.Type); kc != nil {
			kc.del[do(k.DO)] = true
		}
	}
	bytes := 0
	for i := range ch.Put {
		e := &ch.Put[i]
		if kc := get(e.Name, e.Type); kc != nil {
			kc.put[do(e.DO)] = e
			bytes += recordLen(e)
		}
	}
	return plan, bytes
}

func do(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errInconsistent: the shared negative bodies in the maps do not match
// what the change says of the compiled table (see shareable); the zone is
// reloaded instead.
var errInconsistent = errors.New("shared negative bodies do not match the compiled table")

// apply writes changes into g's maps. Records are written before the index
// entries that name them; replaced records are released only after the
// index no longer names them. It returns errNoRoom when the store or the
// index is full; what it applied until then is consistent.
//
// A new SOA (negatives not nil): the entries listed are written first, then
// every shared body made before this update and still in use is replaced by
// the table's new one for its length: one new record each, published by
// one aligned store to its slot, which every link record reads.
func apply(g *generation, zs *zoneState, plan []*keyChange, negatives map[int]wire.Body, seq uint64, res *UpdateResult) error {
	g.seq = seq
	var (
		upKeys  []uint64
		upVals  []xdpnsIndexVal
		delKeys []uint64
		frees   []uint32
		added   int
		links   []newLink // link records written, when bodies may be flipped
	)
	none := xdpnsIndexVal{Ref: [2]uint32{refNone, refNone}}
	for _, kc := range plan {
		key := kc.hash
		old, exists := g.ix.lookup(key)
		if !exists {
			old = none
		}
		if exists && !holds(g.a, old, kc.name, kc.qtype) {
			res.Collisions += nonNil(kc.put)
			continue
		}
		nv := old
		for d := range 2 {
			if kc.del[d] {
				nv.Ref[d] = refNone
				if !zs.signed {
					nv.Ref = none.Ref
				}
			}
		}
		for d, e := range kc.put {
			if e == nil {
				continue
			}
			ref, err := g.writeEntry(zs, e)
			if err != nil {
				return err
			}
			res.Records++
			nv.Ref[d] = ref
			if !zs.signed && d == 0 {
				nv.Ref[1] = ref
			}
			if slot, ok := linkSlot(g.a.at(ref)); ok && negatives != nil {
				links = append(links, newLink{at: len(upKeys), d: d, ref: ref, s: g.slots[slot]})
			}
		}
		if nv.Ref == none.Ref {
			nv = none
		} else {
			nv.Zone = zs.id
		}
		if nv == old {
			continue
		}
		for i, r := range old.Ref {
			if r != refNone && r != nv.Ref[0] && r != nv.Ref[1] && (i == 0 || r != old.Ref[0]) {
				frees = append(frees, r)
			}
		}
		switch {
		case nv == none && exists:
			delKeys = append(delKeys, key)
			added--
		case nv != none:
			upKeys = append(upKeys, key)
			upVals = append(upVals, nv)
			if !exists {
				added++
			}
		}
	}
	if g.keys+added > g.maxKeys {
		return errNoRoom
	}
	for _, k := range delKeys {
		g.ix.del(k)
	}
	for i, k := range upKeys {
		if err := g.ix.put(k, upVals[i]); err != nil {
			return err // both buckets full: reloaded with more
		}
	}
	g.keys += added
	res.Keys += len(upKeys) + len(delKeys)
	for _, r := range frees {
		g.release(r)
	}
	if negatives != nil {
		if err := flipShared(g, zs, negatives, seq, res); err != nil {
			return err
		}
		if err := merge(g, zs, seq, links, upKeys, upVals); err != nil {
			return err
		}
	}
	g.dropUnused(zs)
	return nil
}

// newLink is a link record apply wrote: for upKeys[at], DO d.
type newLink struct {
	at, d int
	ref   uint32
	s     *shared
}

// merge points the links this update made to new shared bodies at the
// flipped one with the same bytes, so that one slot per (length, bytes)
// remains: the next SOA change flips one record, not one per update since.
// The bytes served do not change.
func merge(g *generation, zs *zoneState, seq uint64, links []newLink, upKeys []uint64, upVals []xdpnsIndexVal) error {
	var keys []uint64
	var vals []xdpnsIndexVal
	var frees []uint32
	for _, nl := range links {
		if nl.s == nil || nl.s.born != seq {
			continue
		}
		var to *shared
		for _, c := range zs.neg[nl.s.l] {
			if c.born < seq && sameBody(c.body, nl.s.body) {
				to = c
				break
			}
		}
		if to == nil {
			continue
		}
		name, qtype := recordName(g.a.at(nl.ref))
		tail, ns := linkTail(g.a.at(nl.ref))
		var nxd *shared
		if slot, ok := linkNXD(g.a.at(nl.ref)); ok {
			nxd = g.slots[slot]
		}
		ref, err := g.writeLink(name, qtype, to, tail, ns, nxd)
		if err != nil {
			return err
		}
		copyWild(g.a.at(ref), g.a.at(nl.ref))
		v := &upVals[nl.at]
		for d := range v.Ref {
			if v.Ref[d] == nl.ref {
				v.Ref[d] = ref
			}
		}
		frees = append(frees, nl.ref)
		// Links of one key are listed one after the other.
		if n := len(keys); n > 0 && keys[n-1] == upKeys[nl.at] {
			vals[n-1] = *v
		} else {
			keys = append(keys, upKeys[nl.at])
			vals = append(vals, *v)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	for i, k := range keys {
		if err := g.ix.put(k, vals[i]); err != nil {
			return err
		}
	}
	for _, r := range frees {
		g.release(r)
	}
	return nil
}

// flipShared gives the shared bodies made before update seq and still in
// use their new bytes. Those are the table's shared bodies: the others'
// entries were all listed again and rewritten. Two different ones for one
// length, or one the table has no new body for, mean the maps and the
// table disagree: errInconsistent, nothing flipped.
func flipShared(g *generation, zs *zoneState, negatives map[int]wire.Body, seq uint64, res *UpdateResult) error {
	type flip struct {
		s   *shared
		ref uint32
	}
	var flips []flip
	for l, list := range zs.neg {
		var prev *shared
		for _, s := range list {
			if s.members == 0 || s.born >= seq {
				continue
			}
			nb, ok := negatives[l]
			if !ok || (prev != nil && !sameBody(prev.body, s.body)) {
				return errInconsistent
			}
			prev = s
			if !sameBody(s.body, nb) {
				flips = append(flips, flip{s: s})
			}
		}
	}
	// Every new record first: running out of room must not leave some
	// lengths flipped.
	for i := range flips {
		ref, err := writeShared(g.a, negatives[flips[i].s.l])
		if err != nil {
			return err
		}
		flips[i].ref = ref
	}
	for _, f := range flips {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&g.mem[refOffset(f.s.slot)])), f.ref)
		g.a.release(f.s.ref, storedLen(g.a.at(f.s.ref)))
		f.s.ref, f.s.body = f.ref, negatives[f.s.l]
		res.Shared++
	}
	return nil
}

func nonNil(put [2]*compile.Entry) int {
	n := 0
	for _, e := range put {
		if e != nil {
			n++
		}
	}
	return n
}

// holds reports whether the records of v are for (name, qtype).
func holds(a *arena, v xdpnsIndexVal, name []byte, qtype uint16) bool {
	for _, ref := range v.Ref {
		if ref != refNone {
			n, t := recordName(a.at(ref))
			return t == qtype && bytes.Equal(n, name)
		}
	}
	return true
}

// imageFrom copies what g serves into a new image, packed, leaving out the
// zone with the wire origin exclude (none when empty).
func imageFrom(g *generation, exclude string) (*Image, error) {
	return imageFromWith(g, exclude, "")
}

// imageFromWith is imageFrom leaving out the NSEC3 state of zone fresh
// too (its records are copied), for the caller to make anew.
func imageFromWith(g *generation, exclude, fresh string) (*Image, error) {
	im := newImage()
	im.ix = newMemIndex(g.keys)
	im.seq = g.seq
	local := map[uint32]uint32{} // zone slot → number in im's index
	for k, z := range g.zones {
		if k != exclude {
			zs := newZoneState(z.origin, z.signed)
			zs.id, zs.nxd = z.id, z.nxd
			im.addZoneState(k, zs)
			if z.id != 0 {
				local[z.id] = zs.local
			}
		}
	}
	for k, z := range g.zones {
		if k != exclude && k != fresh && z.n3 != nil {
			if err := im.copyNSEC3(g, z, im.zones[k]); err != nil {
				return nil, err
			}
		}
	}
	owner := map[uint32]string{} // slot → zone
	for k, z := range g.zones {
		for _, list := range z.neg {
			for _, s := range list {
				owner[s.slot] = k
			}
		}
	}
	copyRecord := func(ref uint32) (uint32, error) {
		rec := g.a.at(ref)
		im.Records++
		if slot, ok := linkSlot(rec); ok {
			s, zk := g.slots[slot], owner[slot]
			if s == nil || im.zones[zk] == nil {
				return 0, fmt.Errorf("record at %#x links to unknown slot %#x", ref, slot)
			}
			before := len(im.slots)
			ns, err := im.sharedFor(im.zones[zk], s.l, s.body)
			if err != nil {
				return 0, err
			}
			if len(im.slots) > before {
				ns.born = s.born
				im.Shared++
				im.Records++
			}
			ns.born = min(ns.born, s.born)
			var nxd *shared
			if slot, ok := linkNXD(rec); ok {
				old, zk := g.slots[slot], owner[slot]
				if old == nil || im.zones[zk] == nil {
					return 0, fmt.Errorf("record at %#x names unknown NXDOMAIN slot %#x", ref, slot)
				}
				before := len(im.slots)
				if nxd, err = im.sharedFor(im.zones[zk], old.l, old.body); err != nil {
					return 0, err
				}
				if len(im.slots) > before {
					nxd.born = old.born
					im.Shared++
					im.Records++
				}
			}
			name, qtype := recordName(rec)
			tail, tns := linkTail(rec)
			im.Links++
			nref, err := im.writeLink(name, qtype, ns, tail, tns, nxd)
			if err == nil {
				copyWild(im.a.at(nref), rec)
			}
			return nref, err
		}
		n := storedLen(rec)
		nref, nrec, err := im.a.alloc(n)
		if err != nil {
			return 0, err
		}
		copy(nrec, rec[:n])
		if binary.LittleEndian.Uint16(rec[2:])&answerOversize != 0 {
			im.Oversize++
		}
		return nref, nil
	}
	var err error
	g.ix.each(func(key uint64, v xdpnsIndexVal) {
		if err != nil {
			return
		}
		if exclude != "" {
			ref := v.Ref[0]
			if ref == refNone {
				ref = v.Ref[1]
			}
			name, _ := recordName(g.a.at(ref))
			if o, _ := servedBy(g.zones, name); o == exclude {
				return
			}
		}
		nv := xdpnsIndexVal{Ref: [2]uint32{refNone, refNone}, Zone: local[v.Zone]}
		for d, ref := range v.Ref {
			switch {
			case ref == refNone:
			case d == 1 && ref == v.Ref[0]:
				nv.Ref[1] = nv.Ref[0]
			default:
				nref, cerr := copyRecord(ref)
				if cerr != nil {
					err = cerr
					return
				}
				nv.Ref[d] = nref
			}
		}
		_, err = im.addKey(key, nv)
	})
	if err != nil {
		return nil, err
	}
	return im, nil
}

// copyWild carries a link's ANSWER_WILD and ANSWER_NXD3 marks (compile.Entry.Wild, NXD) from the
// record it replaces, as writeLink's nxd carries ANSWER_NXD.
func copyWild(rec, from []byte) {
	le := binary.LittleEndian
	le.PutUint16(rec[2:], le.Uint16(rec[2:])|le.Uint16(from[2:])&(answerWild|answerNXD3))
}

package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
)

// Record sizes (bpf/abi.h).
const (
	refOffsetMask = 1<<refBlockShift - 1
	// maxRecordLen is the largest record: header, 255-byte name padded,
	// largest stored body. It is the block's slack, so a record starting
	// anywhere below storeBlockLen fits.
	maxRecordLen = answerHdrLen + nameWords*8 + maxBodyLen
	linkLen      = 8 // struct answer_link
	slotLen      = 8 // struct answer_slot
)

// errNoRoom: the generation's maps cannot take the change; a bigger one is
// built (repack).
var errNoRoom = errors.New("no room in the answer maps")

// refOffset is the byte offset in the store of the record ref names.
func refOffset(ref uint32) int {
	return int(ref>>refBlockShift)*storeValueLen + int(ref&refOffsetMask)*storeAlign
}

func align(n int) int { return (n + storeAlign - 1) / storeAlign * storeAlign }

// span is space in the store: a ref and its length in bytes.
type span struct {
	ref uint32
	n   int
}

// arena hands out record space in a store: exact-size free lists first,
// then a bump pointer over blocks not used yet, then a larger free span
// split. Freed space waits in pending until release, which the caller
// invokes after an RCU grace period: until then XDP may still be reading it.
type arena struct {
	mem    []byte // the store: blocks of storeValueLen bytes
	blocks int    // capacity in blocks
	grow   bool   // an image's store: append blocks on demand
	top    int    // blocks the bump pointer has entered
	used   int    // bytes used in block top-1

	free      [maxRecordLen/storeAlign + 1][]uint32 // by length in words
	freeBytes int
	pending   []span
	pendBytes int
	wasted    int // split remainders that cannot start a record
	live      int // bytes in allocated records

	// reclaim waits for a grace period, after which pending space may be
	// reused; nil while no program can read the store (not published).
	reclaim func() error
}

// alloc returns space for a record of n bytes (a multiple of storeAlign, at
// most maxRecordLen) and the bytes to write it into. Short of space, it
// waits for released records to become reusable.
func (a *arena) alloc(n int) (uint32, []byte, error) {
	ref, rec, err := a.alloc1(n)
	if err == nil || a.pendBytes == 0 {
		return ref, rec, err
	}
	if a.reclaim != nil {
		if err := a.reclaim(); err != nil {
			return 0, nil, err
		}
	}
	a.settle()
	return a.alloc1(n)
}

// reserve makes room for bytes more of a growing store, in whole blocks
// (an estimate: the store still grows past it when needed).
func (a *arena) reserve(bytes int) {
	if !a.grow || bytes <= 0 {
		return
	}
	// A block holds records starting in its first storeBlockLen bytes.
	need := (bytes/storeBlockLen + 2) * storeValueLen
	if cap(a.mem)-len(a.mem) < need {
		a.mem = slices.Grow(a.mem, need)
	}
}

func (a *arena) alloc1(n int) (uint32, []byte, error) {
	w := n / storeAlign
	if l := a.free[w]; len(l) > 0 {
		ref := l[len(l)-1]
		a.free[w] = l[:len(l)-1]
		a.freeBytes -= n
		return a.take(ref, n)
	}
	if a.top == 0 || a.used >= storeBlockLen || a.used+n > storeValueLen {
		if a.top < a.blocks || a.grow {
			if a.top > 0 && a.used < storeBlockLen {
				// The block's tail: free space for smaller records.
				a.addFree(uint32(a.top-1)<<refBlockShift|uint32(a.used/storeAlign), storeValueLen-a.used)
			}
			if a.top == a.blocks {
				a.mem = append(a.mem, make([]byte, storeValueLen)...)
				a.blocks++
			}
			a.top++
			a.used = 0
		} else {
			return a.split(n)
		}
	}
	ref := uint32(a.top-1)<<refBlockShift | uint32(a.used/storeAlign)
	a.used += n
	return a.take(ref, n)
}

// split takes n bytes from the smallest larger free span.
func (a *arena) split(n int) (uint32, []byte, error) {
	for w := n/storeAlign + 1; w < len(a.free); w++ {
		l := a.free[w]
		if len(l) == 0 {
			continue
		}
		ref := l[len(l)-1]
		a.free[w] = l[:len(l)-1]
		a.freeBytes -= w * storeAlign
		if rest := w*storeAlign - n; int(ref&refOffsetMask)*storeAlign+n >= storeBlockLen {
			a.wasted += rest // a record cannot start there
		} else {
			a.addFree(ref+uint32(n/storeAlign), rest)
		}
		return a.take(ref, n)
	}
	return 0, nil, errNoRoom
}

// addFree makes a span that starts below storeBlockLen free at once.
func (a *arena) addFree(ref uint32, n int) {
	if n < storeAlign {
		return
	}
	a.free[n/storeAlign] = append(a.free[n/storeAlign], ref)
	a.freeBytes += n
}

func (a *arena) take(ref uint32, n int) (uint32, []byte, error) {
	a.live += n
	off := refOffset(ref)
	rec := a.mem[off : off+n : off+n]
	clear(rec)
	return ref, rec, nil
}

// release frees a published record once no program can be reading it.
func (a *arena) release(ref uint32, n int) {
	a.pending = append(a.pending, span{ref, n})
	a.pendBytes += n
	a.live -= n
}

// settle makes pending space reusable: call it after a grace period.
func (a *arena) settle() {
	for _, s := range a.pending {
		a.addFree(s.ref, s.n)
	}
	a.pending = a.pending[:0]
	a.pendBytes = 0
}

// clone copies the allocator state onto mem, the same bytes in a map.
func (a *arena) clone(mem []byte, blocks int) *arena {
	c := *a
	c.mem, c.blocks, c.grow, c.reclaim = mem, blocks, false, nil
	for i := range c.free {
		c.free[i] = append([]uint32(nil), a.free[i]...)
	}
	c.pending = append([]span(nil), a.pending...)
	return &c
}

// at returns the bytes from ref to the end of its block.
func (a *arena) at(ref uint32) []byte {
	off := refOffset(ref)
	end := (off/storeValueLen + 1) * storeValueLen
	return a.mem[off:end:end]
}

// spare is the space left for new records, pending space not counted.
func (a *arena) spare() int {
	n := a.freeBytes + (a.blocks-a.top)*storeValueLen
	if a.top > 0 && a.used < storeBlockLen {
		n += storeValueLen - a.used
	}
	return n
}

// usedBytes is the store up to the bump pointer.
func (a *arena) usedBytes() int {
	if a.top == 0 {
		return 0
	}
	return (a.top-1)*storeValueLen + a.used
}

// Record kinds and lengths.

// recordLen is the store space of a record: header, padded name, body,
// and a referral's pointer list.
func recordLen(e *compile.Entry) int {
	n := answerHdrLen + (len(e.Name)+7)/8*8
	if len(e.Body.Bytes) <= maxBodyLen {
		n += len(e.Body.Bytes)
	}
	if movedRecord(e) {
		n = answerHdrLen + (len(e.Name)+7)/8*8 + refListOff(len(e.Body.Bytes)) + 2 + len(e.Body.Ptrs)
		if e.WildNoData {
			n = answerHdrLen + (len(e.Name)+7)/8*8 + wildExceptOff(len(e.Body.Bytes)) + 16
		}
	}
	return align(n)
}

// storeLen is the store space writeEntry takes for e, its share of a
// shared body not counted: a link record for a shareable entry or one
// compile split, else the whole record.
func storeLen(e *compile.Entry) int {
	name := answerHdrLen + (len(e.Name)+7)/8*8
	switch {
	case e.Body.Tail != nil && len(e.Body.Tail) <= maxBodyLen-linkLen:
		return align(name + linkLen + len(e.Body.Tail))
	case e.Body.Tail != nil:
		// Stored whole, if it fits (writeEntryRecord).
		if n := len(e.Body.Bytes) + len(e.Body.Tail); n <= maxBodyLen {
			return align(name + n)
		}
		return align(name)
	case shareable(e):
		return align(name + linkLen)
	}
	return recordLen(e)
}

// movedRecord reports whether e's record is marked ANSWER_REFERRAL or
// ANSWER_WILD_NODATA and lists its pointers (docs/xdp.md, "Referrals",
// "Wildcards"): a whole default entry compile marked Referral or
// WildNoData whose body and list fit the slack; others are left to Go.
func movedRecord(e *compile.Entry) bool {
	return (e.Referral || e.WildNoData) && e.Type == compile.TypeDefault && e.Body.Tail == nil && len(e.Body.Bytes) > 0 &&
		len(e.Body.Ptrs)/2 <= maxRefPtrs && refListOff(len(e.Body.Bytes))+2+2*maxRefPtrs <= maxBodyLen &&
		(!e.WildNoData || wildExceptOff(len(e.Body.Bytes))+16 <= maxBodyLen)
}

// wildExceptOff is where an ANSWER_WILD_NODATA record's two exception
// words (compile.Entry.WildExcept) start after its body's first byte: at
// a fixed place after the longest pointer list, which bounds them for the
// verifier as the list is.
func wildExceptOff(bodyLen int) int { return refListOff(bodyLen) + 2 + 2*maxRefPtrs }

// refListOff is where a referral's pointer list starts after its body's
// first byte: the body length rounded up to 2 (16-bit words).
func refListOff(bodyLen int) int { return (bodyLen + 1) &^ 1 }

// storedLen reads a record's length from its header.
func storedLen(rec []byte) int {
	flags := binary.LittleEndian.Uint16(rec[2:])
	n := answerHdrLen + (int(rec[14])+7)/8*8
	switch {
	case flags&answerLink != 0:
		n += linkLen + int(binary.LittleEndian.Uint16(rec[0:])) // the tail
	case flags&answerPass != 0:
	case flags&answerWildNoData != 0:
		n += wildExceptOff(int(binary.LittleEndian.Uint16(rec[0:]))) + 16
	case flags&answerReferral != 0:
		lo := n + refListOff(int(binary.LittleEndian.Uint16(rec[0:])))
		n = lo + 2 + 2*int(binary.LittleEndian.Uint16(rec[lo:]))
	case flags&answerOversize == 0:
		n += int(binary.LittleEndian.Uint16(rec[0:]))
	}
	return align(n)
}

// recordName returns the lowercased wire name and QTYPE of a record.
func recordName(rec []byte) ([]byte, uint16) {
	return rec[answerHdrLen : answerHdrLen+int(rec[14])], binary.LittleEndian.Uint16(rec[10:])
}

// linkSlot returns the slot ref of an ANSWER_LINK record, ok false for
// other records.
func linkSlot(rec []byte) (uint32, bool) {
	if binary.LittleEndian.Uint16(rec[2:])&answerLink == 0 {
		return 0, false
	}
	off := answerHdrLen + (int(rec[14])+7)/8*8
	return binary.LittleEndian.Uint32(rec[off:]), true
}

// linkNXD returns the NXDOMAIN slot an ANSWER_LINK record marked
// ANSWER_NXD names (split over its an and ar fields, which links do not
// use otherwise), ok false for other records.
func linkNXD(rec []byte) (uint32, bool) {
	if binary.LittleEndian.Uint16(rec[2:])&(answerLink|answerNXD) != answerLink|answerNXD {
		return 0, false
	}
	return uint32(binary.LittleEndian.Uint16(rec[4:]))<<16 | uint32(binary.LittleEndian.Uint16(rec[8:])), true
}

// linkTail returns the tail of an ANSWER_LINK record (the name's own part
// of a signed negative answer, empty for a plain one) and its NSCOUNT.
func linkTail(rec []byte) ([]byte, uint16) {
	off := answerHdrLen + (int(rec[14])+7)/8*8 + linkLen
	return rec[off : off+int(binary.LittleEndian.Uint16(rec[0:]))], binary.BigEndian.Uint16(rec[6:])
}

// answers is what a store holds beyond its allocator: the served zones
// and the shared negative bodies. An Image and a generation each have one.
type answers struct {
	a     *arena
	zones map[string]*zoneState // by lowercased wire origin
	slots map[uint32]*shared    // by slot ref
	seq   uint64                // updates applied; shared bodies carry the one that made them
}

func newAnswers(a *arena) *answers {
	return &answers{a: a, zones: map[string]*zoneState{}, slots: map[uint32]*shared{}}
}

// zoneState is one zone's part of the maps beyond its entries: its shared
// negative bodies, by QNAME length (several per length when names of one
// length get different bytes, see shareable).
type zoneState struct {
	origin string // canonical, presentation form
	signed bool
	neg    map[int][]*shared
	nxd    wire.Body   // the NXDOMAIN body (compile.NXDKey), Bytes nil if unknown
	id     uint32      // its slot in zone_stats (index_val.zone), 0 until a generation holds it
	local  uint32      // its number in an image's index until the image is loaded (Image.zoneList)
	n3     *nsec3State // signed NXDOMAIN pieces (nsec3.go), nil for most zones; not modified once set
}

// shared is one shared negative body: the slot word link records name, the
// record it points at, and how many link records use it.
type shared struct {
	slot, ref uint32
	body      wire.Body
	l         int    // QNAME length
	members   int    // link records naming the slot
	born      uint64 // answers.seq when made
}

func newZoneState(origin string, signed bool) *zoneState {
	return &zoneState{origin: origin, signed: signed, neg: map[int][]*shared{}}
}

// clone copies c onto a, the same store bytes in a map.
func (c *answers) clone(a *arena) *answers {
	n := newAnswers(a)
	n.seq = c.seq
	for k, z := range c.zones {
		nz := newZoneState(z.origin, z.signed)
		nz.nxd, nz.id, nz.n3 = z.nxd, z.id, z.n3
		for l, list := range z.neg {
			for _, s := range list {
				cs := *s
				nz.neg[l] = append(nz.neg[l], &cs)
				n.slots[cs.slot] = &cs
			}
		}
		n.zones[k] = nz
	}
	return n
}

func sameBody(a, b wire.Body) bool {
	return a.Rcode == b.Rcode && a.AA == b.AA && a.An == b.An && a.Ns == b.Ns && a.Ar == b.Ar &&
		string(a.Bytes) == string(b.Bytes)
}

// shareable reports whether e is a plain negative answer: NODATA with one
// authority record (the zone's SOA) and nothing else. Its bytes depend on
// the QNAME's length and the SOA only, except for the few names the SOA's
// MNAME or RNAME compress against; such entries share one record per
// (zone, length, bytes). compile marks some of them Negative, but which
// ones depends on the order it meets names in, and two compiles of one zone
// (LoadZones' and the responder's) may differ: the loader does not rely on
// the mark. What it relies on: on an SOA change, compile.Update lists again
// every entry whose body carries the SOA except those its table shares, so
// a shared body still in use after those are rewritten is the table's.
func shareable(e *compile.Entry) bool {
	return e.Kind == answer.NoData && !e.WildNoData && e.Body.An == 0 && e.Body.Ns == 1 && e.Body.Ar == 0 &&
		len(e.Body.Bytes) <= maxBodyLen
}

// writeShared writes a shared record (no name) holding body.
func writeShared(a *arena, body wire.Body) (uint32, error) {
	e := compile.Entry{Body: body}
	ref, rec, err := a.alloc(recordLen(&e))
	if err != nil {
		return 0, err
	}
	encodeRecord(rec, &e)
	return ref, nil
}

// sharedFor returns the zone's shared record for a QNAME length with these
// bytes, making slot and record when there is none.
func (c *answers) sharedFor(z *zoneState, l int, body wire.Body) (*shared, error) {
	for _, s := range z.neg[l] {
		if sameBody(s.body, body) {
			return s, nil
		}
	}
	ref, err := writeShared(c.a, body)
	if err != nil {
		return nil, err
	}
	slot, rec, err := c.a.alloc(slotLen)
	if err != nil {
		c.a.release(ref, storedLen(c.a.at(ref)))
		return nil, err
	}
	binary.LittleEndian.PutUint32(rec, ref)
	s := &shared{slot: slot, ref: ref, body: body, l: l, born: c.seq}
	z.neg[l] = append(z.neg[l], s)
	c.slots[slot] = s
	return s, nil
}

// writeEntry writes e's record: a link to the zone's shared body when e is
// shareable, else the whole record.
func (c *answers) writeEntry(z *zoneState, e *compile.Entry) (uint32, error) {
	ref, err := c.writeEntryRecord(z, e)
	if err == nil {
		markNXD3(c.a, z, e, ref)
	}
	if err == nil && e.WildNoDataSigned {
		// Its NODATA for the names it synthesises: the NXDOMAIN's
		// pieces, RCODE 0 (ANSWER_WILD_PROOF on a default entry).
		rec := c.a.at(ref)
		le := binary.LittleEndian
		le.PutUint16(rec[2:], le.Uint16(rec[2:])|answerWildProof)
	}
	if err == nil && e.Wild {
		// Names below without entries are answered from the wildcard
		// "*." + this name, when its entry says WildSafe (docs/xdp.md).
		rec := c.a.at(ref)
		le := binary.LittleEndian
		le.PutUint16(rec[2:], le.Uint16(rec[2:])|answerWild)
	}
	return ref, err
}

func (c *answers) writeEntryRecord(z *zoneState, e *compile.Entry) (uint32, error) {
	if len(e.Name) == 0 || len(e.Name) > wire.MaxNameLen {
		return 0, fmt.Errorf("entry name of %d bytes", len(e.Name))
	}
	if len(e.Body.Bytes) > 0xFFFF {
		return 0, fmt.Errorf("entry %x/%d: body of %d bytes", e.Name, e.Type, len(e.Body.Bytes))
	}
	if e.Body.Tail != nil {
		// compile split it: the first part is the zone's shared signed
		// negative body for the length, the tail this name's proof.
		if len(e.Body.Tail) <= maxBodyLen-linkLen {
			b := e.Body
			b.Ns, b.TailNs, b.Tail = b.Ns-b.TailNs, 0, nil
			s, err := c.sharedFor(z, len(e.Name)+compile.SignedKey, b)
			if err != nil {
				return 0, err
			}
			return c.writeLink(e.Name, e.Type, s, e.Body.Tail, e.Body.TailNs, nil)
		}
		// Too long to store: whole, hence oversize (never answered
		// from the bytes, so never stale).
		whole := *e
		whole.Body.Bytes = append(slices.Clip(e.Body.Bytes), e.Body.Tail...)
		whole.Body.Tail, whole.Body.TailNs = nil, 0
		e = &whole
	}
	if shareable(e) {
		s, err := c.sharedFor(z, len(e.Name), e.Body)
		if err != nil {
			return 0, err
		}
		// Only link records carry the NXDOMAIN slot: a name whose
		// default entry is a whole record has Go answer below it.
		var nxd *shared
		if e.NXD && e.Type == compile.TypeDefault && !e.DO {
			if nxd, err = c.nxdShared(z); err != nil {
				return 0, err
			}
		}
		return c.writeLink(e.Name, e.Type, s, nil, 0, nxd)
	}
	ref, rec, err := c.a.alloc(recordLen(e))
	if err != nil {
		return 0, err
	}
	encodeRecord(rec, e)
	return ref, nil
}

// writeLink writes a link record to s, followed by the name's tail (ns
// authority records) when s is a signed negative first part. nxd, when not
// nil, is the zone's NXDOMAIN body, which names below this one without an
// entry get (compile.Entry.NXD).
func (c *answers) writeLink(name []byte, qtype uint16, s *shared, tail []byte, ns uint16, nxd *shared) (uint32, error) {
	ref, rec, err := c.a.alloc(align(answerHdrLen + (len(name)+7)/8*8 + linkLen + len(tail)))
	if err != nil {
		return 0, err
	}
	encodeLink(rec, name, qtype, s.slot, tail, ns)
	s.members++
	if nxd != nil {
		le := binary.LittleEndian
		le.PutUint16(rec[2:], le.Uint16(rec[2:])|answerNXD)
		le.PutUint16(rec[4:], uint16(nxd.slot>>16))
		le.PutUint16(rec[8:], uint16(nxd.slot))
		nxd.members++
	}
	return ref, nil
}

// nxdShared returns the zone's NXDOMAIN record: the one there is (a zone
// has one NXDOMAIN body at a time; during an update it still holds the
// old bytes until flipShared gives it the new ones, like every reader
// sees them), else a new one with z.nxd; nil when that is unknown.
func (c *answers) nxdShared(z *zoneState) (*shared, error) {
	if list := z.neg[compile.NXDKey]; len(list) > 0 {
		return list[0], nil
	}
	if z.nxd.Bytes == nil {
		return nil, nil
	}
	return c.sharedFor(z, compile.NXDKey, z.nxd)
}

// writePass writes a record that passes every query for its name, and for
// the names below it the walk to a closest encloser reaches.
func (c *answers) writePass(name []byte) (uint32, error) {
	e := compile.Entry{Name: name}
	ref, rec, err := c.a.alloc(recordLen(&e))
	if err != nil {
		return 0, err
	}
	encodeRecord(rec, &e)
	le := binary.LittleEndian
	le.PutUint16(rec[2:], le.Uint16(rec[2:])|answerPass)
	return ref, nil
}

// release frees a published record (after a grace period, see arena).
func (c *answers) release(ref uint32) {
	rec := c.a.at(ref)
	if slot, ok := linkSlot(rec); ok {
		if s := c.slots[slot]; s != nil {
			s.members--
		}
	}
	if slot, ok := linkNXD(rec); ok {
		if s := c.slots[slot]; s != nil {
			s.members--
		}
	}
	c.a.release(ref, storedLen(rec))
}

// dropUnused frees the shared bodies no link record names any more.
func (c *answers) dropUnused(z *zoneState) {
	for l, list := range z.neg {
		keep := list[:0]
		for _, s := range list {
			if s.members > 0 {
				keep = append(keep, s)
				continue
			}
			c.a.release(s.ref, storedLen(c.a.at(s.ref)))
			c.a.release(s.slot, slotLen)
			delete(c.slots, s.slot)
		}
		if len(keep) == 0 {
			delete(z.neg, l)
		} else {
			z.neg[l] = keep
		}
	}
}

// encodeLink writes an ANSWER_LINK record: header, name, struct
// answer_link, tail. The header's body_len, ns and csum are the tail's
// (zero without one); the rest of the answer comes from the shared record.
func encodeLink(rec, name []byte, qtype uint16, slot uint32, tail []byte, ns uint16) {
	le := binary.LittleEndian
	le.PutUint16(rec[0:], uint16(len(tail)))
	le.PutUint16(rec[2:], answerLink)
	binary.BigEndian.PutUint16(rec[6:], ns) // network order
	le.PutUint16(rec[10:], qtype)
	le.PutUint16(rec[12:], bodySum(tail))
	rec[14] = uint8(len(name))
	n := copy(rec[answerHdrLen:], name)
	off := answerHdrLen + (n+7)/8*8
	le.PutUint32(rec[off:], slot)
	copy(rec[off+linkLen:], tail)
}

// encodeRecord writes struct answer (host order is little-endian: bpfel),
// the zero-padded name and the body into rec.
func encodeRecord(rec []byte, e *compile.Entry) {
	b := &e.Body
	flags := uint16(b.Rcode) & answerRcodeMask
	if b.AA {
		flags |= answerAA
	}
	if b.ExtraOff > 0 {
		flags |= answerExtraOpt
	}
	if e.WildSafe {
		flags |= answerWildSafe
	}
	if e.WildSafe && e.DO {
		// Signed: the proof follows, chosen per QNAME (compile's
		// wildproof.go).
		flags |= answerWildProof
	}
	ref := movedRecord(e)
	if ref && e.Referral {
		flags |= answerReferral
	}
	if ref && e.WildNoData {
		flags |= answerWildNoData
	}
	body := b.Bytes
	if len(body) > maxBodyLen {
		flags |= answerOversize
		body = nil
	}
	le := binary.LittleEndian
	le.PutUint16(rec[0:], uint16(len(b.Bytes)))
	le.PutUint16(rec[2:], flags)
	binary.BigEndian.PutUint16(rec[4:], b.An) // network order
	binary.BigEndian.PutUint16(rec[6:], b.Ns)
	binary.BigEndian.PutUint16(rec[8:], b.Ar)
	le.PutUint16(rec[10:], e.Type)
	le.PutUint16(rec[12:], bodySum(b.Bytes))
	rec[14] = uint8(len(e.Name))
	rec[15] = 0
	clear(rec[answerHdrLen:])
	n := copy(rec[answerHdrLen:], e.Name)
	at := answerHdrLen + (n+7)/8*8
	copy(rec[at:], body)
	if ref {
		// The pointers to move (wire.Body.Ptrs), host order: a count,
		// then offsets from the body's first byte.
		lo := at + refListOff(len(body))
		le.PutUint16(rec[lo:], uint16(len(b.Ptrs)/2))
		for i := 0; i+1 < len(b.Ptrs); i += 2 {
			le.PutUint16(rec[lo+2+i:], binary.BigEndian.Uint16(b.Ptrs[i:]))
		}
	}
	if ref && e.WildNoData {
		// The next closer labels to pass (compile.LabelWord).
		wo := at + wildExceptOff(len(body))
		le.PutUint64(rec[wo:], e.WildExcept[0])
		le.PutUint64(rec[wo+8:], e.WildExcept[1])
	}
}

// bodySum is the folded one's-complement sum of b read as host-order
// (little-endian) 16-bit words, an odd tail padded with zero.
func bodySum(b []byte) uint16 {
	var s uint64
	for len(b) >= 2 {
		s += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

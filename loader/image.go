package loader

import (
	"errors"
	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/wire"
)

// Sizes of the ABI (bpf/abi.h). New checks them against the object's BTF.
const (
	storeBlockShift = 16
	storeBlockLen   = 1 << storeBlockShift // record start offsets in a block
	storeAlign      = 8
	answerHdrLen    = 16
	maxBodyLen      = 2048
	nameWords       = 32
	storeValueLen   = storeBlockLen + answerHdrLen + nameWords*8 + maxBodyLen
	refBlockShift   = storeBlockShift - 3
	refNone         = 0xFFFFFFFF

	answerRcodeMask  = 0x000F
	answerAA         = 0x0010
	answerOversize   = 0x0020
	answerLink       = 0x0040
	answerNXD        = 0x0080
	answerPass       = 0x0100
	answerExtraOpt   = 0x0200
	answerWild       = 0x0400
	answerWildSafe   = 0x0800
	answerWildProof  = 0x4000 // ANSWER_WILD_PROOF
	answerReferral   = 0x1000
	answerWildNoData = 0x8000 // ANSWER_WILD_NODATA
	maxRefPtrs       = 32     // MAX_REF_PTRS: pointers a referral record lists at most
)

// ZoneEntries are one zone's compiled answers. Signed says whether answers
// depend on DO: for an unsigned zone compile lists DO=false only, and XDP
// must answer DO=1 queries with the same records, as compile.Table does.
//
// NXDomain is the zone's NXDOMAIN body (compile.NXDomainBody), which the
// names below an entry marked NXD that have no entry get. GoOnly marks a
// zone Go answers by its engine alone: it has no entries, and its origin
// gets a record that passes, so that neither its names nor those below
// them are answered from an enclosing zone.
type ZoneEntries struct {
	Origin  string
	Signed  bool
	Entries []compile.Entry
	// List, when set, gives the entries instead of Entries, as many
	// times as asked (a table's, ZonesFrom): a 1M-name zone's entries
	// copied into a slice took half a gigabyte while the image was built.
	// fn may reuse the *Entry, but the bytes it points to must stay as
	// they are until List returns: BuildImage keeps copies of a few
	// entries at a time, not of their bytes.
	List func(fn func(*compile.Entry) error) error
	// Hint is about how many entries List gives (more is harmless):
	// with it, the image is sized from a sample, not from a first walk
	// over them all.
	Hint     int
	NXDomain wire.Body
	GoOnly   bool
	NSEC3    *NSEC3Data // the zone's signed NXDOMAIN composed (nsec3.go), or nil
}

// sizeSample is how many entries of a large List BuildImage sizes the
// image from (a variable for the test that samples small zones).
var sizeSample = 20000

var errSampled = errors.New("loader: sampled")

// each calls fn for every entry of z until it returns an error.
func (z *ZoneEntries) each(fn func(*compile.Entry) error) error {
	if z.List != nil {
		return z.List(fn)
	}
	for i := range z.Entries {
		if err := fn(&z.Entries[i]); err != nil {
			return err
		}
	}
	return nil
}

// Image is the content of the index and store maps for a set of zones.
type Image struct {
	// ix is the index, laid out as the generation's (buckets.go). A value's
	// zone is, until the image is loaded, the zone's place in zoneList plus
	// one (0: none), for its slot in zone_stats is the XDP object's to give
	// (assignSlots, fill).
	ix       *bucketIndex
	zoneList []*zoneState
	// newIndex makes ix, and a larger one when a key finds both its
	// buckets full (newMemIndex; loadInPlace bounds it by the configured
	// entries).
	newIndex func(entries int) (*bucketIndex, error)
	*answers

	Entries    int // (name, QTYPE) pairs in the index
	Records    int // records in the store (shared negative bodies included)
	Links      int // records answering with a shared negative body
	Shared     int // shared negative bodies
	Oversize   int // records whose body is not stored (TC answers only)
	Collisions int // entries left to Go: their key hash was taken by another

	batch   []pending // addZone's
	touched uint64    // keeps addZone's loads (a sum never read)
}

func newImage() *Image {
	return &Image{answers: newAnswers(&arena{grow: true}), newIndex: memIndex}
}

func memIndex(entries int) (*bucketIndex, error) { return newMemIndex(entries), nil }

// addKey adds key, which is not in the index, with v, growing the index
// when both its buckets are full; it returns the value in place.
func (im *Image) addKey(key uint64, v xdpnsIndexVal) (*xdpnsIndexVal, error) {
	for {
		p, err := im.ix.add(key, v)
		if err == nil {
			im.Entries = im.ix.count
			return p, nil
		}
		if !errors.Is(err, errNoRoom) {
			return nil, err
		}
		if err := im.growIndex(2 * max(im.ix.capacity(), im.ix.count)); err != nil {
			return nil, err
		}
	}
}

// growIndex moves the index into a new one made for entries.
func (im *Image) growIndex(entries int) error {
	for {
		ix, err := im.newIndex(entries)
		if err != nil {
			return err
		}
		err = ix.copyFrom(im.ix, nil)
		if err == nil {
			im.ix.close()
			im.ix = ix
			return nil
		}
		ix.close()
		if !errors.Is(err, errNoRoom) {
			return err
		}
		entries *= 2
	}
}

// addZoneState registers zs as one of im's zones, numbered for the index.
func (im *Image) addZoneState(key string, zs *zoneState) {
	im.zones[key] = zs
	im.zoneList = append(im.zoneList, zs)
	zs.local = uint32(len(im.zoneList))
}

// zoneSlots maps the zones' numbers in the index to their slots
// (assignSlots gives them first).
func (im *Image) zoneSlots() []uint32 {
	out := make([]uint32, len(im.zoneList)+1)
	for i, z := range im.zoneList {
		out[i+1] = z.id
	}
	return out
}

// StoreBytes is the size of the records, padding between blocks excluded.
func (im *Image) StoreBytes() int { return im.a.usedBytes() }

// Blocks is the number of store blocks the image fills.
func (im *Image) Blocks() int { return im.a.top }

// BuildImage lays out the records of zs and their index. Entries of several
// zones must not overlap (see Zones, which applies the responder's
// longest-origin rule).
func BuildImage(zs ...ZoneEntries) (*Image, error) {
	// Sized up front: growing the index map and the store's bytes as
	// entries came was a third of laying out a big zone (rehashing, and
	// copying the store at every doubling). Pages never written are
	// never resident.
	n, store, err := sizeOf(zs)
	if err != nil {
		return nil, err
	}
	im := newImage()
	im.answers.a.reserve(store)
	if err := im.addZones(n, zs); err != nil {
		return nil, err
	}
	return im, nil
}

// sizeOf estimates the index keys and store bytes of an image of zs (keys:
// a DO=0 and a DO=1 entry of one name and type share one):
// what every entry takes (storeLen), and a shared body for every QNAME
// length seen in the zone's shareable entries. loadInPlace sizes a store
// map from it, so it should be close: the kernel allocates the whole map
// when it creates it. The first estimate, every body counted whole, was
// 1.6 times the store a 1M-name zone took.
func sizeOf(zs []ZoneEntries) (n, store int, err error) {
	for i := range zs {
		k, sum, dos := 0, 0, [2]int{}
		z := &zs[i]
		sampled := z.List != nil && z.Hint > 4*sizeSample
		// Shared bodies by QNAME length, for DO=0, DO=1 and split ones.
		var lengths [3][wire.MaxNameLen + 1]bool
		if err := z.each(func(e *compile.Entry) error {
			k++
			dos[do(e.DO)]++
			sum += storeLen(e)
			if l := len(e.Name); (e.Body.Tail != nil || shareable(e)) && l <= wire.MaxNameLen {
				kind := do(e.DO)
				if e.Body.Tail != nil {
					kind = 2
				}
				if !lengths[kind][l] {
					lengths[kind][l] = true
					sum += align(answerHdrLen+len(e.Body.Bytes)) + slotLen
				}
			}
			if sampled && k == sizeSample {
				return errSampled
			}
			return nil
		}); err != nil && err != errSampled {
			return 0, 0, err
		}
		// Beside the entries: the NXDOMAIN body, the NSEC3 pieces, a
		// Go-only zone's pass record.
		extra := align(answerHdrLen+len(z.NXDomain.Bytes)) + slotLen + align(answerHdrLen+wire.MaxNameLen+1)
		if d := z.NSEC3; d != nil {
			extra += align(answerHdrLen+len(d.Head.Bytes)) + slotLen
			for i := range d.Chain {
				extra += align(answerHdrLen + len(d.Chain[i].Piece.Bytes))
			}
		}
		if sampled && k == sizeSample {
			// A table lists in its map's order, as good as random: the
			// sample's mean, with a sixteenth to spare (short, a grown
			// image's store grows, loadInPlace has the map's headroom;
			// long, the map holds memory never used).
			n += z.Hint*max(dos[0], dos[1])/k + 1
			store += sum/k*z.Hint*17/16 + extra
		} else {
			n += max(dos[0], dos[1]) + 1
			store += sum + extra
		}
	}
	return n, store, nil
}

// addZones adds zs to an empty image, its index sized for n entries
// unless it has one.
func (im *Image) addZones(n int, zs []ZoneEntries) error {
	if im.ix == nil {
		var err error
		if im.ix, err = im.newIndex(n); err != nil {
			return err
		}
	}
	for i := range zs {
		if err := im.addZone(&zs[i]); err != nil {
			return err
		}
	}
	return nil
}

// addZone adds one zone's entries. A DO=0 and a DO=1 entry of one (name,
// QTYPE) share an index key; a key already taken by another (name, QTYPE)
// stays with the first: a query for the other hits it, fails the record
// check and goes to Go.
func (im *Image) addZone(z *ZoneEntries) error {
	w, err := wireName(z.Origin)
	if err != nil {
		return err
	}
	zs := newZoneState(dns.CanonicalName(z.Origin), z.Signed)
	zs.nxd = z.NXDomain
	im.addZoneState(string(w), zs)
	if z.NSEC3 != nil {
		before := len(im.slots)
		if err := im.addNSEC3(zs, z.NSEC3); err != nil {
			return err
		}
		im.Shared += len(im.slots) - before
		im.Records += len(im.slots) - before + len(z.NSEC3.Chain)
	}
	if z.GoOnly {
		ref, err := im.writePass(w)
		if err != nil {
			return err
		}
		h := keyHash(w, compile.TypeDefault)
		if im.ix.get(h) == nil {
			if _, err := im.addKey(h, xdpnsIndexVal{Ref: [2]uint32{ref, ref}, Zone: zs.local}); err != nil {
				return err
			}
			im.Records++
		}
	}
	// Entries are put a batch at a time, their buckets first touched all
	// together: each key's two buckets are anywhere in the index, and
	// looked up one after the other their cache misses were a third of
	// a 1M-name layout. A batch holds copies of the entries, whose bytes
	// stay the lister's (ZoneEntries.List).
	if im.batch == nil {
		im.batch = make([]pending, 0, layoutBatch)
	}
	flush := func() error {
		var sink uint64
		for i := range im.batch {
			p := &im.batch[i]
			p.h = keyHash(p.e.Name, p.e.Type)
			sink += im.ix.touch(p.h)
		}
		im.touched += sink
		for i := range im.batch {
			if err := im.put(zs, z.Signed, &im.batch[i].e, im.batch[i].h); err != nil {
				return err
			}
		}
		im.batch = im.batch[:0]
		return nil
	}
	if err := z.each(func(e *compile.Entry) error {
		im.batch = append(im.batch, pending{e: *e})
		if len(im.batch) < layoutBatch {
			return nil
		}
		return flush()
	}); err != nil {
		im.batch = im.batch[:0]
		return err
	}
	return flush()
}

// layoutBatch is how many entries addZone touches the buckets of at once.
const layoutBatch = 32

// pending is an entry of addZone's batch and its key.
type pending struct {
	e compile.Entry
	h uint64
}

// put adds entry e of zone zs, whose key is h.
func (im *Image) put(zs *zoneState, signed bool, e *compile.Entry, h uint64) error {
	v := im.ix.get(h)
	if v != nil && !holds(im.a, *v, e.Name, e.Type) {
		im.Collisions++
		return nil
	}
	shared := len(im.slots)
	ref, err := im.writeEntry(zs, e)
	if err != nil {
		return err
	}
	if v == nil {
		// Added once its record is written: a key is never without one.
		if v, err = im.addKey(h, xdpnsIndexVal{Ref: [2]uint32{refNone, refNone}, Zone: zs.local}); err != nil {
			return err
		}
	}
	im.count(e, ref, len(im.slots) > shared)
	if old := v.Ref[do(e.DO)]; old != refNone {
		// Listed twice (compile may list DS twice at a delegation
		// reached through a chain): the last one stays, as in
		// compile.Table.
		im.release(old)
		im.Records--
	}
	if e.DO {
		v.Ref[1] = ref
	} else {
		v.Ref[0] = ref
		if !signed {
			v.Ref[1] = ref
		}
	}
	return nil
}

func (im *Image) count(e *compile.Entry, ref uint32, newShared bool) {
	im.Records++
	if newShared {
		im.Shared++
		im.Records++
	}
	if _, ok := linkSlot(im.a.at(ref)); ok {
		im.Links++
	} else if len(e.Body.Bytes) > maxBodyLen {
		im.Oversize++
	}
}

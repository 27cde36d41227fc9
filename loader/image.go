package loader

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"

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

	answerRcodeMask = 0x000F
	answerAA        = 0x0010
	answerOversize  = 0x0020
)

// ZoneEntries are one zone's compiled answers. Signed says whether answers
// depend on DO: for an unsigned zone compile lists DO=false only, and XDP
// must answer DO=1 queries with the same records, as compile.Table does.
type ZoneEntries struct {
	Origin  string
	Signed  bool
	Entries []compile.Entry
}

// Image is the content of the index and store maps for a set of entries.
type Image struct {
	keys   []uint64 // index keys, in insertion order
	vals   []xdpnsIndexVal
	store  []byte // whole blocks of storeValueLen bytes
	blocks int
	used   int // bytes used in the last block

	Entries    int // (name, QTYPE) pairs in the index
	Records    int // records in the store
	Oversize   int // records whose body is not stored (TC answers only)
	Collisions int // entries left to Go: their key hash was taken by another
}

// StoreBytes is the size of the records, padding between blocks excluded.
func (im *Image) StoreBytes() int {
	if im.blocks == 0 {
		return 0
	}
	return (im.blocks-1)*storeValueLen + im.used
}

// Blocks is the number of store blocks the image fills.
func (im *Image) Blocks() int { return im.blocks }

// BuildImage lays out the records of zs and their index. Entries of several
// zones must not overlap (see Zones, which applies the responder's
// longest-origin rule).
func BuildImage(zs ...ZoneEntries) (*Image, error) {
	im := &Image{}
	// A DO=0 and a DO=1 entry of one (name, QTYPE) share an index key.
	type slot struct{ do0, do1 *compile.Entry }
	for zi := range zs {
		z := &zs[zi]
		at := make(map[uint64]int, len(z.Entries))
		slots := make([]slot, 0, len(z.Entries))
		hashes := make([]uint64, 0, len(z.Entries))
		for i := range z.Entries {
			e := &z.Entries[i]
			h := keyHash(e.Name, e.Type)
			j, ok := at[h]
			if !ok {
				at[h] = len(slots)
				slots = append(slots, slot{})
				hashes = append(hashes, h)
				j = len(slots) - 1
			}
			sl := &slots[j]
			if first := cmp.Or(sl.do0, sl.do1); first != nil &&
				(first.Type != e.Type || !bytes.Equal(first.Name, e.Name)) {
				// Another (name, QTYPE) with this hash: the first keeps
				// the key; a query for this one hits it, fails the
				// record check and goes to Go.
				im.Collisions++
				continue
			}
			if e.DO {
				sl.do1 = e
			} else {
				sl.do0 = e
			}
		}
		for j := range slots {
			sl := &slots[j]
			v := xdpnsIndexVal{Ref: [2]uint32{refNone, refNone}}
			var err error
			if sl.do0 != nil {
				if v.Ref[0], err = im.add(sl.do0); err != nil {
					return nil, err
				}
			}
			switch {
			case sl.do1 != nil:
				if v.Ref[1], err = im.add(sl.do1); err != nil {
					return nil, err
				}
			case !z.Signed:
				v.Ref[1] = v.Ref[0]
			}
			im.keys = append(im.keys, hashes[j])
			im.vals = append(im.vals, v)
			im.Entries++
		}
	}
	return im, nil
}

// recordLen is the store space of a record: header, padded name, body.
func recordLen(e *compile.Entry) int {
	n := answerHdrLen + (len(e.Name)+7)/8*8
	if len(e.Body.Bytes) <= maxBodyLen {
		n += len(e.Body.Bytes)
	}
	return (n + storeAlign - 1) / storeAlign * storeAlign
}

// add appends e's record to the store and returns its ref.
func (im *Image) add(e *compile.Entry) (uint32, error) {
	if len(e.Name) == 0 || len(e.Name) > wire.MaxNameLen {
		return 0, fmt.Errorf("entry name of %d bytes", len(e.Name))
	}
	if len(e.Body.Bytes) > 0xFFFF {
		return 0, fmt.Errorf("entry %x/%d: body of %d bytes", e.Name, e.Type, len(e.Body.Bytes))
	}
	n := recordLen(e)
	// Records start below storeBlockLen and end inside the block's slack.
	if im.blocks == 0 || im.used >= storeBlockLen || im.used+n > storeValueLen {
		im.store = append(im.store, make([]byte, storeValueLen)...)
		im.blocks++
		im.used = 0
	}
	off := (im.blocks-1)*storeValueLen + im.used
	encodeRecord(im.store[off:off+n], e)
	ref := uint32(im.blocks-1)<<refBlockShift | uint32(im.used/storeAlign)
	im.used += n
	im.Records++
	if len(e.Body.Bytes) > maxBodyLen {
		im.Oversize++
	}
	return ref, nil
}

// encodeRecord writes struct answer (host order is little-endian: bpfel),
// the zero-padded name and the body into rec.
func encodeRecord(rec []byte, e *compile.Entry) {
	b := &e.Body
	flags := uint16(b.Rcode) & answerRcodeMask
	if b.AA {
		flags |= answerAA
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
	copy(rec[answerHdrLen+(n+7)/8*8:], body)
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

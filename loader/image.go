package loader

import (
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
	Collisions int // entries left to Go: their key hash was already taken
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

type entryKey struct {
	name  string
	qtype uint16
}

// BuildImage lays out the records of zs and their index. Entries of several
// zones must not overlap (see Zones, which applies the responder's
// longest-origin rule).
func BuildImage(zs ...ZoneEntries) (*Image, error) {
	im := &Image{}
	type pair struct{ do0, do1 *compile.Entry }
	for zi := range zs {
		z := &zs[zi]
		pairs := make(map[entryKey]*pair, len(z.Entries))
		var order []entryKey
		for i := range z.Entries {
			e := &z.Entries[i]
			k := entryKey{string(e.Name), e.Type}
			p := pairs[k]
			if p == nil {
				p = &pair{}
				pairs[k] = p
				order = append(order, k)
			}
			if e.DO {
				p.do1 = e
			} else {
				p.do0 = e
			}
		}
		seen := make(map[uint64]entryKey, len(order))
		for _, k := range order {
			p := pairs[k]
			h := keyHash([]byte(k.name), k.qtype)
			if _, dup := seen[h]; dup {
				// The first keeps the key; a query for this one hits
				// it, fails the name check and goes to Go.
				im.Collisions++
				continue
			}
			seen[h] = k
			v := xdpnsIndexVal{Ref: [2]uint32{refNone, refNone}}
			var err error
			if p.do0 != nil {
				if v.Ref[0], err = im.add(p.do0); err != nil {
					return nil, err
				}
			}
			switch {
			case p.do1 != nil:
				if v.Ref[1], err = im.add(p.do1); err != nil {
					return nil, err
				}
			case !z.Signed:
				v.Ref[1] = v.Ref[0]
			}
			im.keys = append(im.keys, h)
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

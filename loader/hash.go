package loader

import "encoding/binary"

// The name hash of bpf/dns.h (name_hash_type), which keys the index map:
// 64-bit little-endian words of the lowercased wire name, zero-padded, mixed
// in one at a time, then the QTYPE with a final avalanche.
const (
	hashSeed = 0x6a09e667f3bcc908
	hashMul  = 0x9e3779b97f4a7c15
	hashFmix = 0xbf58476d1ce4e5b9
)

func hashWord(h, w uint64) uint64 {
	h ^= w
	h *= hashMul
	return h ^ h>>32
}

// nameHash hashes a lowercased wire name (at most 255 bytes).
func nameHash(name []byte) uint64 {
	h := uint64(hashSeed) ^ uint64(len(name))
	for i := 0; i < len(name); i += 8 {
		var w [8]byte
		copy(w[:], name[i:])
		h = hashWord(h, binary.LittleEndian.Uint64(w[:]))
	}
	return h
}

// keyHash is the index key of (name, qtype); qtype 0 is the default entry.
func keyHash(name []byte, qtype uint16) uint64 {
	h := hashWord(nameHash(name), uint64(qtype))
	h ^= h >> 29
	h *= hashFmix
	h ^= h >> 32
	if h == 0 {
		return 1 // 0 marks a free index slot
	}
	return h
}

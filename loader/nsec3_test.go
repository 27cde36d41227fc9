package loader

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/miekg/dns"
)

// The NSEC3 building blocks of bpf/nsec3.h, run through BPF_PROG_RUN on
// the programs of bpf/nsec3_selftest.c: the SHA-1 against crypto/sha1 and
// miekg/dns's HashName, the search against sort.Search.

// Frame offsets of bpf/nsec3_selftest.c.
const (
	htMode, htOff, htNlen, htSaltLen, htSalt, htName, htOut, htKey, htIter = 0, 4, 8, 12, 16, 48, 304, 324, 324 + 4 + 256
	htLen                                                                  = htIter + 4
	ftGen, ftBase, ftCount, ftTarget, ftOut, ftLen                         = 0, 4, 8, 12, 32, 40
)

type nsec3Progs struct {
	hash, find *ebpf.Program
	hashes     *ebpf.Map // outer: generation -> sorted entries
	spec       *ebpf.MapSpec
}

func loadNsec3Progs(t testing.TB) *nsec3Progs {
	t.Helper()
	requireRoot(t)
	spec, err := loadNsec3Selftest()
	if err != nil {
		t.Fatal(err)
	}
	var objs nsec3SelftestObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load nsec3 selftest: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	return &nsec3Progs{hash: objs.Nsec3HashTest, find: objs.Nsec3FindTest, hashes: objs.Nsec3Hashes, spec: spec.Maps["nsec3_hashes"].InnerMap}
}

// hashFrame is nsec3_hash_test's frame for the suffix of wire at off.
func hashFrame(mode uint32, wire []byte, off int, salt []byte) []byte {
	f := make([]byte, htLen)
	binary.LittleEndian.PutUint32(f[htMode:], mode)
	binary.LittleEndian.PutUint32(f[htOff:], uint32(off))
	binary.LittleEndian.PutUint32(f[htNlen:], uint32(len(wire)))
	binary.LittleEndian.PutUint32(f[htSaltLen:], uint32(len(salt)))
	copy(f[htSalt:htSalt+32], salt)
	copy(f[htName:htName+256], wire)
	return f
}

// bpfHash runs nsec3_hash_test; ok is false when the program refused.
func (p *nsec3Progs) bpfHash(t testing.TB, wire []byte, off int, salt []byte) (digest []byte, key []byte, ok bool) {
	return p.bpfHashIter(t, wire, off, salt, 0)
}

// bpfHashIter is bpfHash with iterations.
func (p *nsec3Progs) bpfHashIter(t testing.TB, wire []byte, off int, salt []byte, iter uint32) (digest []byte, key []byte, ok bool) {
	t.Helper()
	f := hashFrame(1, wire, off, salt)
	binary.LittleEndian.PutUint32(f[htIter:], iter)
	ret, out := run(t, p.hash, f)
	switch ret {
	case 3: // XDP_TX
		return out[htOut : htOut+20], out[htKey+4 : htKey+4+256], true
	case 1: // XDP_DROP
		return nil, nil, false
	}
	t.Fatalf("nsec3_hash_test returned %d", ret)
	return nil, nil, false
}

// randomName is a name of about n wire octets in mixed case, labels of
// random lengths (1..63), from a PRNG.
func randomName(r *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	var labels []string
	used := 1
	for used < n {
		l := min(1+r.IntN(63), n-used-1)
		if l < 1 {
			break
		}
		b := make([]byte, l)
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		labels = append(labels, string(b))
		used += l + 1
	}
	return strings.Join(labels, ".") + "."
}

func packName(t testing.TB, name string) []byte {
	t.Helper()
	b := make([]byte, 256)
	n, err := dns.PackDomainName(name, b, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %q: %v", name, err)
	}
	return b[:n]
}

// labelOffsets are the offsets of each label of a wire name, the root's
// excluded (the suffixes nsec3_hash is asked for).
func labelOffsets(wire []byte) []int {
	var offs []int
	for off := 0; wire[off] != 0; off += int(wire[off]) + 1 {
		offs = append(offs, off)
	}
	return offs
}

// Every suffix of names from 1 to 255 octets, mixed case, salts of 0 to
// 32 bytes: the digest is SHA-1(lowercased suffix || salt), the NSEC3 hash
// of HashName with iterations 0; the key is the name lowercased.
func TestNSEC3HashMatchesGo(t *testing.T) {
	p := loadNsec3Progs(t)
	r := rand.New(rand.NewPCG(1, 2))
	salts := [][]byte{nil, {0xaa}, []byte("1234567"), []byte("12345678"), []byte("123456789"), bytes.Repeat([]byte{0xfe}, 31), bytes.Repeat([]byte{0x5c}, 32)}
	// Lengths around SHA-1's block edges (55/56 bytes of message, 119/120,
	// 183/184, 247/248) and the longest names.
	lengths := []int{1, 2, 9, 40, 54, 55, 56, 57, 63, 64, 100, 118, 119, 120, 121, 182, 183, 184, 200, 246, 247, 248, 250, 253, 254, 255}
	checked := 0
	for _, n := range lengths {
		for trial := range 3 {
			name := "."
			if n > 1 {
				name = randomName(r, n)
			}
			wire := packName(t, name)
			salt := salts[(n+trial)%len(salts)]
			offs := append(labelOffsets(wire), len(wire)-1) // and the root
			for _, off := range offs {
				got, key, ok := p.bpfHash(t, wire, off, salt)
				if !ok {
					t.Fatalf("%q at %d, salt %d bytes: refused", name, off, len(salt))
				}
				lower := bytes.ToLower(wire)
				want := sha1.Sum(append(append([]byte(nil), lower[off:]...), salt...))
				if !bytes.Equal(got, want[:]) {
					t.Fatalf("%q (%d octets) at %d, salt %x: digest %x, want %x", name, len(wire), off, salt, got, want)
				}
				if !bytes.Equal(key[:len(wire)], lower) || !isZero(key[len(wire):(len(wire)+7)&^7]) {
					t.Fatalf("%q: key %x, want the name lowercased then zeros", name, key[:(len(wire)+7)&^7])
				}
				checked++
			}
			// miekg/dns's NSEC3 hash of the whole name (as the engine uses it).
			got, _, _ := p.bpfHash(t, wire, 0, salt)
			want := dns.HashName(name, dns.SHA1, 0, hex.EncodeToString(salt))
			if enc := base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(got); !strings.EqualFold(enc, want) {
				t.Fatalf("%q salt %x: %s, HashName says %s", name, salt, enc, want)
			}
		}
	}
	t.Logf("%d suffixes hashed", checked)
}

// With iterations (RFC 5155 §5; legacy zones use 1 to 20 or so): the
// digest is HashName's for every count up to NSEC3_MAX_ITERATIONS, names
// of 1 to 255 octets, salts of 0 to 32 bytes; more are refused.
func TestNSEC3HashIterations(t *testing.T) {
	p := loadNsec3Progs(t)
	r := rand.New(rand.NewPCG(5, 6))
	salts := [][]byte{nil, {0xaa}, []byte("12345678"), bytes.Repeat([]byte{0x5c}, 31), bytes.Repeat([]byte{0x5c}, 32)}
	checked := 0
	for iter := uint32(0); iter <= nsec3MaxIterations; iter++ {
		for _, n := range []int{1, 20, 56, 120, 255} {
			name := "."
			if n > 1 {
				name = randomName(r, n)
			}
			wire := packName(t, name)
			salt := salts[(int(iter)+n)%len(salts)]
			got, _, ok := p.bpfHashIter(t, wire, 0, salt, iter)
			if !ok {
				t.Fatalf("%q, %d iterations, salt %d bytes: refused", name, iter, len(salt))
			}
			want := dns.HashName(name, dns.SHA1, uint16(iter), hex.EncodeToString(salt))
			if enc := base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(got); !strings.EqualFold(enc, want) {
				t.Fatalf("%q salt %x, %d iterations: %s, HashName says %s", name, salt, iter, enc, want)
			}
			checked++
		}
	}
	if _, _, ok := p.bpfHashIter(t, packName(t, "a.test."), 0, nil, nsec3MaxIterations+1); ok {
		t.Errorf("%d iterations hashed", nsec3MaxIterations+1)
	}
	t.Logf("%d hashes checked", checked)
}

// What nsec3_hash must refuse: a salt over 32 bytes, an offset at or past
// the name's end. And a frame too short is ABORTED, not read past.
func TestNSEC3HashRefuses(t *testing.T) {
	p := loadNsec3Progs(t)
	wire := packName(t, "www.Example.test.")
	if _, _, ok := p.bpfHash(t, wire, 0, bytes.Repeat([]byte{1}, 33)); ok {
		t.Error("33-byte salt hashed")
	}
	if _, _, ok := p.bpfHash(t, wire, len(wire), nil); ok {
		t.Error("offset past the name hashed")
	}
	if ret, _ := run(t, p.hash, make([]byte, htLen-1)); ret != 0 {
		t.Errorf("short frame: %d, want XDP_ABORTED", ret)
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// putEntries makes entries generation gen's array.
func (p *nsec3Progs) putEntries(t testing.TB, gen uint32, entries []nsec3SelftestNsec3Entry) {
	t.Helper()
	spec := p.spec.Copy()
	spec.MaxEntries = uint32(max(len(entries), 1))
	inner, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	keys := make([]uint32, len(entries))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if len(entries) > 0 {
		if _, err := inner.BatchUpdate(keys, entries, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.hashes.Put(gen, inner); err != nil {
		t.Fatal(err)
	}
}

func (p *nsec3Progs) bpfFind(t testing.TB, gen, base, count uint32, target []byte) int64 {
	t.Helper()
	f := make([]byte, ftLen)
	binary.LittleEndian.PutUint32(f[ftGen:], gen)
	binary.LittleEndian.PutUint32(f[ftBase:], base)
	binary.LittleEndian.PutUint32(f[ftCount:], count)
	copy(f[ftTarget:], target)
	ret, out := run(t, p.find, f)
	if ret != 3 {
		t.Fatalf("nsec3_find_test returned %d", ret)
	}
	return int64(binary.LittleEndian.Uint64(out[ftOut:]))
}

const (
	nsec3None  = -1
	nsec3Match = 1 << 32
)

// The search in one zone's sorted range, other zones' ranges around it:
// an exact hash finds its entry with the match bit; a hash between two
// finds the one before (it covers); before the first, the zone's last
// (the chain wraps); after the last, the last.
func TestNSEC3FindMatchesSearch(t *testing.T) {
	p := loadNsec3Progs(t)
	r := rand.New(rand.NewPCG(3, 4))
	randHash := func() (h [20]byte) {
		for i := range h {
			h[i] = byte(r.UintN(256))
		}
		return h
	}
	sortHashes := func(hs [][20]byte) {
		sort.Slice(hs, func(i, j int) bool { return bytes.Compare(hs[i][:], hs[j][:]) < 0 })
	}
	// Three zones: 7 entries, then the zone under test, then 5.
	for _, n := range []int{1, 2, 3, 17, 1000} {
		var all []nsec3SelftestNsec3Entry
		add := func(k int) (base int, hs [][20]byte) {
			base = len(all)
			for range k {
				hs = append(hs, randHash())
			}
			sortHashes(hs)
			for i, h := range hs {
				all = append(all, nsec3SelftestNsec3Entry{Hash: h, Ref: uint32(base + i)})
			}
			return base, hs
		}
		add(7)
		base, hs := add(n)
		add(5)
		p.putEntries(t, 1, all)
		want := func(target []byte) int64 {
			i := sort.Search(len(hs), func(i int) bool { return bytes.Compare(hs[i][:], target) > 0 })
			if i == 0 {
				return int64(base + len(hs) - 1)
			}
			if bytes.Equal(hs[i-1][:], target) {
				return nsec3Match | int64(base+i-1)
			}
			return int64(base + i - 1)
		}
		var targets [][]byte
		for _, h := range hs {
			h := h
			targets = append(targets, h[:])
			up, down := h, h
			up[19]++
			down[19]--
			targets = append(targets, up[:], down[:])
		}
		targets = append(targets, make([]byte, 20), bytes.Repeat([]byte{0xff}, 20))
		for range 200 {
			h := randHash()
			targets = append(targets, h[:])
		}
		for _, target := range targets {
			if got, w := p.bpfFind(t, 1, uint32(base), uint32(n), target), want(target); got != w {
				t.Fatalf("%d entries, target %x: got %#x, want %#x", n, target, got, w)
			}
		}
	}
	// No entries, and a generation with no array.
	p.putEntries(t, 0, nil)
	if got := p.bpfFind(t, 0, 0, 0, make([]byte, 20)); got != nsec3None {
		t.Errorf("empty zone: %#x", got)
	}
	if err := p.hashes.Delete(uint32(0)); err != nil {
		t.Fatal(err)
	}
	if got := p.bpfFind(t, 0, 0, 4, make([]byte, 20)); got != nsec3None {
		t.Errorf("no array: %#x", got)
	}
}

// BenchmarkNSEC3Hash: ns per NSEC3 hash in BPF (iterations 0, 8-byte
// salt) of a 3-label name and of a 255-octet one, against the same run
// without the hash (copying the name into the key only): the cost a
// signed negative answer adds per hashed name (two: next closer and
// wildcard).
func BenchmarkNSEC3Hash(b *testing.B) {
	p := loadNsec3Progs(b)
	r := rand.New(rand.NewPCG(5, 6))
	salt := []byte("12345678")
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"short", packName(b, "www.example.test.")},
		{"255", packName(b, randomName(r, 255))},
	} {
		for _, mode := range []uint32{0, 1} {
			label := map[uint32]string{0: "copy-only", 1: "hash"}[mode]
			b.Run(c.name+"/"+label, func(b *testing.B) {
				frame := hashFrame(mode, c.wire, 0, salt)
				b.ResetTimer()
				ret, per, err := p.hash.Benchmark(frame, b.N, b.ResetTimer)
				if err != nil || ret != 3 {
					b.Fatalf("run: %d %v", ret, err)
				}
				b.ReportMetric(float64(per.Nanoseconds()), "ns/run")
			})
		}
	}
}

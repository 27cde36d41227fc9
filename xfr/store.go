package xfr

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// The state directory holds, per zone, NAME.zone (records, IXFR history and
// the timers at the time it was written) and NAME.timers (the timers after
// every refresh, which is far more often than the zone changes). Both are
// replaced atomically: write a temporary file, fsync, rename, fsync the
// directory. A reader therefore sees an old or a new file, never a mix; a
// damaged file (disk error, truncation by hand) fails its checksum.

// Timers is a zone's refresh state, persisted beside it.
type timerState struct {
	Serial      uint32    `json:"serial"`
	Source      string    `json:"source,omitempty"` // primary of the last transfer
	LastRefresh time.Time `json:"last_refresh"`     // last successful SOA check
	NextCheck   time.Time `json:"next_check"`
	ExpireAt    time.Time `json:"expire_at"`
}

// zoneMagic starts every zone file; the digit is the format version.
// Version 1 held the zone as records; version 2 holds its nodes in the
// form the zone keeps them (zone.EachStored), so a restart builds no
// record objects. Version 1 files, from earlier releases, are still read.
const (
	zoneMagic   = "xdpns-zone 2\n"
	zoneMagicV1 = "xdpns-zone 1\n"
)

type zoneHeader struct {
	Origin  string     `json:"origin"`
	Records int        `json:"records,omitempty"` // version 1
	Nodes   int        `json:"nodes,omitempty"`   // version 2
	Names   int        `json:"names,omitempty"`   // version 2: bytes of the node list
	Data    int64      `json:"data,omitempty"`    // version 2: bytes of the node data
	Diffs   int        `json:"diffs"`
	Timers  timerState `json:"timers"`
}

type timersFile struct {
	Origin string `json:"origin"`
	timerState
}

// ErrCorrupt marks a state file that cannot be trusted.
var ErrCorrupt = errors.New("corrupt state file")

type store struct{ dir string }

// fileBase maps a zone name to a file name: letters, digits, '-', '_' and
// the dots between labels stay; every other byte becomes %XX.
func fileBase(origin string) string {
	name := strings.TrimSuffix(dns.CanonicalName(origin), ".")
	if name == "" {
		return "%2E" // the root zone
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c == '.' && i > 0 && name[i-1] != '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s store) zonePath(origin string) string {
	return filepath.Join(s.dir, fileBase(origin)+".zone")
}

func (s store) timersPath(origin string) string {
	return filepath.Join(s.dir, fileBase(origin)+".timers")
}

// saveZone writes the zone file (version 2):
//
//	magic, u32 header length, header (JSON)
//	node list, header.Names bytes: per node u8 flags (1: NSEC3 owner),
//	    u16 name length, the name, u32 data length
//	node data, header.Data bytes: every node's data, in list order
//	IXFR history: per diff u32 from, to, deleted, added, then the records
//	SHA-256 of all of the above
//
// The zone is only read: the responder serves it at the same time.
func (s store) saveZone(origin string, z *zone.Zone, diffs []Diff, tm timerState) error {
	// One walk of the zone, kept: a map's order differs between walks,
	// and the list and the data must be in the same one.
	hd := zoneHeader{Origin: origin, Diffs: len(diffs), Timers: tm}
	nodes := make([]zone.StoredNode, 0, z.Len())
	z.EachStored(func(name string, nsec3 bool, data []byte) error {
		nodes = append(nodes, zone.StoredNode{Name: name, NSEC3: nsec3, Data: data})
		hd.Names += 7 + len(name)
		hd.Data += int64(len(data))
		return nil
	})
	hd.Nodes = len(nodes)
	return writeAtomic(s.zonePath(origin), func(w io.Writer) error {
		h := sha256.New()
		bw := getFileWriter(io.MultiWriter(w, h))
		defer putFileWriter(bw)
		hdr, err := json.Marshal(hd)
		if err != nil {
			return err
		}
		bw.WriteString(zoneMagic)
		writeU32(bw, uint32(len(hdr)))
		bw.Write(hdr)
		var b [7]byte
		for _, n := range nodes {
			b[0] = 0
			if n.NSEC3 {
				b[0] = 1
			}
			binary.BigEndian.PutUint16(b[1:], uint16(len(n.Name)))
			bw.Write(b[:3])
			bw.WriteString(n.Name)
			binary.BigEndian.PutUint32(b[3:], uint32(len(n.Data)))
			bw.Write(b[3:7])
		}
		for _, n := range nodes {
			bw.Write(n.Data)
		}
		bp := getMsgBuf()
		defer putMsgBuf(bp)
		for _, d := range diffs {
			if err := writeDiff(bw, *bp, d); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err = w.Write(h.Sum(nil))
		return err
	})
}

func writeU32(w *bufio.Writer, v uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	w.Write(b[:])
}

// writeRRs writes each record as a 16-bit length and its uncompressed wire
// form. It packs through a dns.Msg because dns.PackRR writes the RDLENGTH
// into the record's header: the records are the served zone's, read
// concurrently by the responder.
func writeRRs(w *bufio.Writer, buf []byte, rrs []dns.RR) error {
	var m dns.Msg
	for _, rr := range rrs {
		m.Answer = append(m.Answer[:0], rr)
		b, err := m.PackBuffer(buf)
		if err != nil {
			return fmt.Errorf("pack %s: %w", short(rr), err)
		}
		b = b[12:] // the message header
		w.WriteByte(byte(len(b) >> 8))
		w.WriteByte(byte(len(b)))
		w.Write(b)
	}
	return nil
}

// loadZone reads a zone file written by saveZone (or by a release that
// wrote version 1) and builds the zone. Any damage is ErrCorrupt.
func (s store) loadZone(origin string) (z *zone.Zone, diffs []Diff, tm timerState, err error) {
	f, err := os.Open(s.zonePath(origin))
	if err != nil {
		return nil, nil, tm, err
	}
	defer f.Close()
	h := sha256.New()
	// The buffer is the file's size up to 64 KiB: a fleet of small zones
	// restarts without allocating and clearing 64 KiB per zone (10,000
	// zones: 0.6 GiB of garbage).
	size := 1 << 16
	if fi, err := f.Stat(); err == nil && fi.Size() < int64(size) {
		size = max(int(fi.Size()), 16)
	}
	r := &hashReader{r: bufio.NewReaderSize(f, size), h: h}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrCorrupt, f.Name(), fmt.Sprintf(format, args...))
	}
	magic := make([]byte, len(zoneMagic))
	if _, err := io.ReadFull(r, magic); err != nil || (string(magic) != zoneMagic && string(magic) != zoneMagicV1) {
		return nil, nil, tm, corrupt("not an xdpns zone file (or another version)")
	}
	n, err := readU32(r)
	if err != nil || n > 1<<20 {
		return nil, nil, tm, corrupt("bad header length")
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, tm, corrupt("short header")
	}
	var hdr zoneHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, nil, tm, corrupt("header: %v", err)
	}
	if hdr.Origin != dns.CanonicalName(origin) {
		return nil, nil, tm, corrupt("holds zone %q, want %q", hdr.Origin, origin)
	}
	var rrs []dns.RR            // version 1
	var nodes []zone.StoredNode // version 2
	var buf []byte              // grown to the largest record by readRRs
	if string(magic) == zoneMagicV1 {
		if rrs, err = readRRs(r, &buf, hdr.Records); err != nil {
			return nil, nil, tm, corrupt("records: %v", err)
		}
		if len(rrs) == 0 {
			return nil, nil, tm, corrupt("no records")
		}
	} else if nodes, err = readNodes(r, hdr); err != nil {
		return nil, nil, tm, corrupt("nodes: %v", err)
	}
	for i := 0; i < hdr.Diffs; i++ {
		var d Diff
		var nd, na uint32
		for _, p := range []*uint32{&d.From, &d.To, &nd, &na} {
			if *p, err = readU32(r); err != nil {
				return nil, nil, tm, corrupt("diff %d: %v", i, err)
			}
		}
		if d.Deleted, err = readRRs(r, &buf, int(nd)); err != nil {
			return nil, nil, tm, corrupt("diff %d: %v", i, err)
		}
		if d.Added, err = readRRs(r, &buf, int(na)); err != nil {
			return nil, nil, tm, corrupt("diff %d: %v", i, err)
		}
		if len(d.Deleted) == 0 || len(d.Added) == 0 {
			return nil, nil, tm, corrupt("diff %d without SOA", i)
		}
		diffs = append(diffs, d)
	}
	want := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r.r, got); err != nil {
		return nil, nil, tm, corrupt("missing checksum (truncated?)")
	}
	if !bytes.Equal(got, want) {
		return nil, nil, tm, corrupt("checksum mismatch")
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, nil, tm, corrupt("data after the checksum")
	}
	opt := zone.Options{RequireNS: true}
	if rrs != nil {
		z, _, err = zone.New(origin, rrs, opt, nil)
	} else {
		z, err = zone.FromStored(origin, nodes, opt)
	}
	if err != nil {
		return nil, nil, tm, corrupt("%v", err)
	}
	if z.Serial() != hdr.Timers.Serial {
		return nil, nil, tm, corrupt("records at serial %d, header says %d", z.Serial(), hdr.Timers.Serial)
	}
	return z, diffs, hdr.Timers, nil
}

// readNodes reads the node list and data of a version 2 file. The names
// share one string and the data one slice, each read in one piece: two
// allocations for the zone instead of two per node.
func readNodes(r io.Reader, hdr zoneHeader) ([]zone.StoredNode, error) {
	if hdr.Nodes <= 0 || hdr.Names < 7*hdr.Nodes || hdr.Names > 1<<30 || hdr.Data < 0 || hdr.Data > 1<<34 {
		return nil, fmt.Errorf("bad sizes: %d nodes, %d bytes of names, %d of data", hdr.Nodes, hdr.Names, hdr.Data)
	}
	lb := make([]byte, hdr.Names)
	if _, err := io.ReadFull(r, lb); err != nil {
		return nil, fmt.Errorf("node list: %w", err)
	}
	// The names' bytes become the nodes' names without a copy (a
	// 10,000-zone restart copied them all once more): lb is never
	// written again.
	list := unsafe.String(unsafe.SliceData(lb), len(lb))
	data := make([]byte, hdr.Data)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("node data: %w", err)
	}
	nodes := make([]zone.StoredNode, hdr.Nodes)
	p, q := 0, int64(0)
	for i := range nodes {
		if len(list)-p < 7 {
			return nil, fmt.Errorf("node %d: list cut short", i)
		}
		flags := list[p]
		nl := int(list[p+1])<<8 | int(list[p+2])
		if flags > 1 || len(list)-p-7 < nl {
			return nil, fmt.Errorf("node %d: bad entry", i)
		}
		name := list[p+3 : p+3+nl]
		p += 3 + nl
		dl := int64(binary.BigEndian.Uint32([]byte(list[p : p+4])))
		p += 4
		if hdr.Data-q < dl {
			return nil, fmt.Errorf("node %d: data cut short", i)
		}
		nodes[i] = zone.StoredNode{Name: name, NSEC3: flags == 1, Data: data[q : q+dl : q+dl]}
		q += dl
	}
	if p != len(list) || q != hdr.Data {
		return nil, errors.New("sizes do not add up")
	}
	return nodes, nil
}

type hashReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

func readU32(r io.Reader) (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

func readRRs(r io.Reader, bufp *[]byte, n int) ([]dns.RR, error) {
	if n < 0 || n > 1<<28 {
		return nil, fmt.Errorf("bad record count %d", n)
	}
	out := make([]dns.RR, 0, min(n, 1<<16))
	for i := 0; i < n; i++ {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		rl := int(l[0])<<8 | int(l[1])
		if cap(*bufp) < rl {
			*bufp = make([]byte, max(rl, 512))
		}
		b := (*bufp)[:rl]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		rr, off, err := dns.UnpackRR(b, 0)
		if err != nil || off != len(b) {
			return nil, fmt.Errorf("record %d: malformed", i)
		}
		out = append(out, rr)
	}
	return out, nil
}

// saveTimers writes the timers file.
func (s store) saveTimers(origin string, tm timerState) error {
	b, err := json.Marshal(timersFile{Origin: origin, timerState: tm})
	if err != nil {
		return err
	}
	return writeAtomic(s.timersPath(origin), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// loadTimers reads the timers file.
func (s store) loadTimers(origin string) (timerState, error) {
	b, err := os.ReadFile(s.timersPath(origin))
	if err != nil {
		return timerState{}, err
	}
	var tf timersFile
	if err := json.Unmarshal(b, &tf); err != nil {
		return timerState{}, fmt.Errorf("%w %s: %v", ErrCorrupt, s.timersPath(origin), err)
	}
	if tf.Origin != dns.CanonicalName(origin) {
		return timerState{}, fmt.Errorf("%w %s: holds zone %q", ErrCorrupt, s.timersPath(origin), tf.Origin)
	}
	return tf.timerState, nil
}

// quarantine moves a damaged file aside (NAME.corrupt) so it is neither
// loaded again nor lost before someone can look at it.
func quarantine(path string) error {
	err := os.Rename(path, path+".corrupt")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// writeAtomic replaces path with what write produces: a temporary file in
// the same directory, its data made durable (syncData: a shared syncfs,
// not an fsync of its own), rename over path, fsync the directory. After a
// crash path holds the old file or the whole new one.
//
// A new file (nothing at path) is written in place and synced once after:
// one syncfs makes its data and its name durable together. A crash
// before can leave it torn, which loses nothing: there was no old file,
// and the checksum every state file carries sends a torn one to
// quarantine and the zone to its primary. A catalog's thousands of new
// members pay one create and one shared sync each instead of a create, a
// rename and two syncs.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
		// Nothing there: written in place, no temporary file and no
		// rename (each costs a directory update), synced once.
		if err = write(f); err == nil {
			err = f.Close()
		} else {
			f.Close()
		}
		if err != nil {
			os.Remove(path)
			return err
		}
		return syncData(dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = syncData(dir); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

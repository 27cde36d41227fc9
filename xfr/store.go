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

	"github.com/miekg/dns"
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
const zoneMagic = "xdpns-zone 1\n"

type zoneHeader struct {
	Origin  string     `json:"origin"`
	Records int        `json:"records"`
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

// saveZone writes the zone file: records (SOA first), IXFR history, timers.
func (s store) saveZone(origin string, rrs []dns.RR, diffs []Diff, tm timerState) error {
	return writeAtomic(s.zonePath(origin), func(w io.Writer) error {
		h := sha256.New()
		bw := getFileWriter(io.MultiWriter(w, h))
		defer putFileWriter(bw)
		hdr, err := json.Marshal(zoneHeader{Origin: origin, Records: len(rrs), Diffs: len(diffs), Timers: tm})
		if err != nil {
			return err
		}
		bw.WriteString(zoneMagic)
		writeU32(bw, uint32(len(hdr)))
		bw.Write(hdr)
		bp := getMsgBuf()
		defer putMsgBuf(bp)
		buf := *bp
		if err := writeRRs(bw, buf, rrs); err != nil {
			return err
		}
		for _, d := range diffs {
			if err := writeDiff(bw, buf, d); err != nil {
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

// loadZone reads a zone file written by saveZone. Any damage is ErrCorrupt.
func (s store) loadZone(origin string) (rrs []dns.RR, diffs []Diff, tm timerState, err error) {
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
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != zoneMagic {
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
	var buf []byte // grown to the largest record by readRRs
	if rrs, err = readRRs(r, &buf, hdr.Records); err != nil {
		return nil, nil, tm, corrupt("records: %v", err)
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
	if len(rrs) == 0 {
		return nil, nil, tm, corrupt("no records")
	}
	return rrs, diffs, hdr.Timers, nil
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

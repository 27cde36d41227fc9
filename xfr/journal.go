package xfr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The IXFR journal file, NAME.ixfr, makes saving an incremental change cost
// the change, not the zone: each applied IXFR appends its differences and
// fsyncs, and NAME.zone (the full snapshot) is rewritten only after a full
// transfer or once the journal holds more records than the zone
// (zoneState.journaled). A frame is
//
//	length uint32 | payload | CRC-32C of payload uint32
//
// with the payload in NAME.zone's difference encoding (From, To, counts,
// records). A crash can leave a torn last frame: loading stops at the first
// frame that is short or fails its CRC, and the differences before it stand.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (s store) journalPath(origin string) string {
	return filepath.Join(s.dir, fileBase(origin)+".ixfr")
}

// appendDiffs appends differences to the zone's journal and fsyncs it.
func (s store) appendDiffs(origin string, diffs []Diff) error {
	path := s.journalPath(origin)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var payload bytes.Buffer
	w := getFileWriter(f)
	defer putFileWriter(w)
	bp := getMsgBuf()
	defer putMsgBuf(bp)
	buf := *bp
	for _, d := range diffs {
		payload.Reset()
		pw := bufio.NewWriter(&payload)
		if err := writeDiff(pw, buf, d); err != nil {
			f.Close()
			return err
		}
		pw.Flush()
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(payload.Len()))
		w.Write(hdr[:])
		w.Write(payload.Bytes())
		binary.BigEndian.PutUint32(hdr[:], crc32.Checksum(payload.Bytes(), crcTable))
		w.Write(hdr[:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) { // a new file: make its name durable
		return syncDir(s.dir)
	}
	return nil
}

// loadJournal reads the journal's differences. torn reports frames that were
// dropped from the end (short or failing their CRC).
func (s store) loadJournal(origin string) (diffs []Diff, torn bool, err error) {
	data, err := os.ReadFile(s.journalPath(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var buf []byte // grown to the largest record by readRRs
	for len(data) > 0 {
		if len(data) < 8 {
			return diffs, true, nil
		}
		n := int(binary.BigEndian.Uint32(data))
		if n > len(data)-8 {
			return diffs, true, nil
		}
		payload := data[4 : 4+n]
		if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(data[4+n:]) {
			return diffs, true, nil
		}
		d, err := readDiff(bytes.NewReader(payload), &buf)
		if err != nil {
			return diffs, true, nil
		}
		diffs = append(diffs, d)
		data = data[8+n:]
	}
	return diffs, false, nil
}

func (s store) removeJournal(origin string) error {
	err := os.Remove(s.journalPath(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func writeDiff(w *bufio.Writer, buf []byte, d Diff) error {
	writeU32(w, d.From)
	writeU32(w, d.To)
	writeU32(w, uint32(len(d.Deleted)))
	writeU32(w, uint32(len(d.Added)))
	if err := writeRRs(w, buf, d.Deleted); err != nil {
		return err
	}
	return writeRRs(w, buf, d.Added)
}

func readDiff(r io.Reader, buf *[]byte) (Diff, error) {
	var v [4]uint32
	for i := range v {
		x, err := readU32(r)
		if err != nil {
			return Diff{}, err
		}
		v[i] = x
	}
	const maxCount = 1 << 26 // no more records than a transfer may hold
	if v[2] > maxCount || v[3] > maxCount {
		return Diff{}, fmt.Errorf("difference of %d/%d records", v[2], v[3])
	}
	d := Diff{From: v[0], To: v[1]}
	var err error
	if d.Deleted, err = readRRs(r, buf, int(v[2])); err != nil {
		return Diff{}, err
	}
	if d.Added, err = readRRs(r, buf, int(v[3])); err != nil {
		return Diff{}, err
	}
	return d, nil
}

func syncDir(dir string) error {
	return groupSync("dir "+dir, func() error { return fsyncDir(dir) })
}

// syncData makes the data of every file written in dir so far durable: one
// syncfs(2) of its filesystem, shared as syncDir's are. writeAtomic calls
// it between writing a state file and renaming it over the old one, in
// place of an fsync per file: 10,000 catalog members arriving at once
// pay a few filesystem syncs, not 10,000 file syncs (each a journal
// commit and a disk flush of its own).
func syncData(dir string) error {
	return groupSync("fs "+dir, func() error { return syncFS(dir) })
}

// groupSync runs do for key as a group commit (below).
func groupSync(key string, do func() error) error {
	v, _ := groupSyncers.LoadOrStore(key, &groupSyncer{})
	return v.(*groupSyncer).run(do)
}

// groupSyncers holds one groupSyncer per key (directory and kind).
var groupSyncers sync.Map

// groupSyncer coalesces the syncs of one directory (group commit): a
// caller needs a sync that began after its write; one that arrives while
// a sync runs waits for it and then shares the next with every other
// caller that arrived meanwhile. A catalog's thousands of first transfers
// each write and rename a state file in the same directory: they pay a few
// syncs, not one each. Durability is unchanged: no caller returns before a
// sync that started after its call.
type groupSyncer struct {
	mu                sync.Mutex
	cond              *sync.Cond
	running           bool
	started, finished uint64
	err               error // of the last sync finished
}

func (s *groupSyncer) run(do func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	need := s.started + 1 // the running one (if any) may have begun before us
	for s.finished < need {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		if groupLinger > 0 {
			// Let the writers that come meanwhile join this sync:
			// they see it running, and its number is still to come.
			s.mu.Unlock()
			time.Sleep(groupLinger)
			s.mu.Lock()
		}
		s.started++
		mine := s.started
		s.mu.Unlock()
		err := do()
		s.mu.Lock()
		s.running, s.finished, s.err = false, mine, err
		s.cond.Broadcast()
	}
	return s.err
}

// groupLinger is how long a group sync waits for more writers before it
// starts: a catalog's members arrive a few hundred a second, and each
// sync is a journal commit whatever it carries. Persisting follows
// serving, so the wait delays no answer. A variable for tests.
var groupLinger = 20 * time.Millisecond

// fsyncDir is a variable for the test that counts syncs.
var fsyncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncFS is syncfs(2) on dir's filesystem (a variable for the tests). It
// reports write-back errors of any file there since the last call (Linux
// 5.8 and later), so a failed write is not taken for a durable one.
var syncFS = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

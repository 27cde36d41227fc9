package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Meta says how and where a benchmark ran.
type Meta struct {
	Kind     string        `json:"kind"`    // always "meta"
	Command  string        `json:"command"` // the exact command line
	Mode     string        `json:"mode"`    // "quick" or "full"
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Machine  string        `json:"machine"` // CPU model, cores, kernel
	Link     string        `json:"link"`    // e.g. "veth, threaded NAPI, native XDP in veth driver"
	Notes    []string      `json:"notes,omitempty"`
}

// JSONL appends one JSON object per line to a file. Each record is one
// write, straight to the file, so a benchmark killed half-way leaves
// every record it had finished. Safe for concurrent use.
type JSONL struct {
	mu sync.Mutex
	f  *os.File
}

// OpenJSONL opens path for appending, creating it if needed.
func OpenJSONL(path string) (*JSONL, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open json lines: %w", err)
	}
	return &JSONL{f: f}, nil
}

// Meta appends m. Writing it once at the start and again at the end (with
// Duration) is fine: ReadJSONL keeps the last one.
func (j *JSONL) Meta(m Meta) error {
	m.Kind = "meta"
	return j.write(m)
}

// Run appends r.
func (j *JSONL) Run(r Run) error {
	r.Kind = "run"
	return j.write(r)
}

// Setup appends s.
func (j *JSONL) Setup(s ServerSetup) error {
	s.Kind = "setup"
	return j.write(s)
}

func (j *JSONL) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json line: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write json line: %w", err)
	}
	return nil
}

// Close syncs and closes the file.
func (j *JSONL) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return errors.Join(j.f.Sync(), j.f.Close())
}

// ReadJSONL reads back what JSONL wrote. Kinds it does not know (other
// tools' records) are skipped, and so is a last line cut short by a
// killed writer; the last meta record wins.
func ReadJSONL(path string) (Meta, []Run, []ServerSetup, error) {
	var (
		meta   Meta
		runs   []Run
		setups []ServerSetup
	)
	f, err := os.Open(path)
	if err != nil {
		return meta, nil, nil, fmt.Errorf("read json lines: %w", err)
	}
	defer f.Close()

	rd := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := rd.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return meta, runs, setups, fmt.Errorf("read %s: %w", path, err)
		}
		truncated := err == io.EOF
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if derr := decodeLine(line, &meta, &runs, &setups); derr != nil && !truncated {
				return meta, runs, setups, fmt.Errorf("%s:%d: %w", path, n, derr)
			}
		}
		if truncated {
			return meta, runs, setups, nil
		}
	}
}

func decodeLine(line []byte, meta *Meta, runs *[]Run, setups *[]ServerSetup) error {
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(line, &k); err != nil {
		return err
	}
	switch k.Kind {
	case "meta":
		var m Meta
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		*meta = m
	case "run":
		var r Run
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		*runs = append(*runs, r)
	case "setup":
		var s ServerSetup
		if err := json.Unmarshal(line, &s); err != nil {
			return err
		}
		*setups = append(*setups, s)
	}
	return nil
}

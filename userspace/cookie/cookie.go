// Package cookie makes and checks DNS server cookies (RFC 7873) in the
// interoperable form of RFC 9018: version 1, three reserved bytes, a 32-bit
// timestamp and SipHash-2-4 over the client cookie, those fields and the
// client's address, keyed with the server secret. The Go responder calls
// it; docs/rrl.md describes the policy.
package cookie

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// Sizes (RFC 7873 §4).
const (
	ClientLen    = 8
	ServerLen    = 16 // RFC 9018's server cookie
	minServerLen = 8
	maxServerLen = 32
	SecretLen    = 16
	version      = 1
)

// Timing (RFC 9018 §4.3): a server cookie is valid from 5 minutes in the
// future to an hour in the past; one older than half an hour is replaced.
const (
	maxAge   = 3600
	maxAhead = 300
	renewAge = 1800
)

// ErrMalformed: a COOKIE option of a length RFC 7873 §5.2.2 calls
// malformed (the answer is FORMERR).
var ErrMalformed = errors.New("malformed COOKIE option")

type secrets struct {
	current, previous [SecretLen]byte
	hasPrevious       bool
}

// Jar holds the secrets. Safe for concurrent use; Rotate swaps them
// atomically.
type Jar struct {
	s atomic.Pointer[secrets]
	// Now is the clock of timestamps; tests set it.
	Now func() time.Time
}

// New returns a jar with this secret (nil: a random one) and the previous
// one (nil: none), each SecretLen bytes.
func New(secret, previous []byte) (*Jar, error) {
	s := &secrets{}
	if err := fill(&s.current, secret); err != nil {
		return nil, err
	}
	if previous != nil {
		if err := fill(&s.previous, previous); err != nil {
			return nil, err
		}
		s.hasPrevious = true
	}
	j := &Jar{Now: time.Now}
	j.s.Store(s)
	return j, nil
}

func fill(dst *[SecretLen]byte, b []byte) error {
	if b == nil {
		_, err := rand.Read(dst[:])
		return err
	}
	if len(b) != SecretLen {
		return fmt.Errorf("cookie secret of %d bytes, want %d", len(b), SecretLen)
	}
	copy(dst[:], b)
	return nil
}

// Rotate makes secret (nil: a random one) current; the current one becomes
// the previous, still accepted (RFC 9018 §5: every cookie made with it
// ages out within the hour).
func (j *Jar) Rotate(secret []byte) error {
	old := j.s.Load()
	s := &secrets{previous: old.current, hasPrevious: true}
	if err := fill(&s.current, secret); err != nil {
		return err
	}
	j.s.Store(s)
	return nil
}

// Secrets returns the current and previous secret (for XDP's maps).
func (j *Jar) Secrets() (current, previous [SecretLen]byte, hasPrevious bool) {
	s := j.s.Load()
	return s.current, s.previous, s.hasPrevious
}

// Server computes the RFC 9018 server cookie for a client cookie, time
// stamp and client address.
func Server(secret *[SecretLen]byte, client []byte, ts uint32, ip netip.Addr) [ServerLen]byte {
	var c [ServerLen]byte
	c[0] = version
	binary.BigEndian.PutUint32(c[4:], ts)
	binary.LittleEndian.PutUint64(c[8:], hash(secret, client, c[:8], ip))
	return c
}

// hash is SipHash-2-4 over client cookie, the server cookie's first 8
// bytes as they are (RFC 9018 A.3: reserved bytes a client changed are
// hashed as received) and the client address.
func hash(secret *[SecretLen]byte, client, head []byte, ip netip.Addr) uint64 {
	var in [ClientLen + 8 + 16]byte
	n := copy(in[:], client[:ClientLen])
	n += copy(in[n:], head[:8])
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		n += copy(in[n:], a[:])
	} else if ip.Is6() {
		a := ip.As16()
		n += copy(in[n:], a[:])
	}
	return sipHash24(secret, in[:n])
}

// Answer checks the COOKIE option data of a query from ip and returns, after
// dst, the option data to answer with (client cookie, then server cookie:
// the one received when it is valid, made with the current secret and
// younger than half an hour, else a new one) and whether the server cookie
// received was valid. A malformed option is ErrMalformed.
func (j *Jar) Answer(dst, opt []byte, ip netip.Addr) ([]byte, bool, error) {
	if n := len(opt); n != ClientLen && (n < ClientLen+minServerLen || n > ClientLen+maxServerLen) {
		return dst, false, ErrMalformed
	}
	now := uint32(j.Now().Unix())
	s := j.s.Load()
	client, server := opt[:ClientLen], opt[ClientLen:]
	valid, fresh := false, false
	if len(server) == ServerLen && server[0] == version {
		ts := binary.BigEndian.Uint32(server[4:])
		age := int32(now - ts)                        // RFC 1982 arithmetic: the stamp wraps in 2106
		got := binary.LittleEndian.Uint64(server[8:]) // SipHash output bytes are little-endian
		if age <= maxAge && age >= -maxAhead {
			if hash(&s.current, client, server, ip) == got {
				valid, fresh = true, age < renewAge
			} else if s.hasPrevious {
				valid = hash(&s.previous, client, server, ip) == got
			}
		}
	}
	dst = append(dst, client...)
	if fresh {
		return append(dst, server...), true, nil
	}
	c := Server(&s.current, client, now, ip)
	return append(dst, c[:]...), valid, nil
}

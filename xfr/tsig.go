package xfr

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/miekg/dns"
)

// ErrTSIG marks a transfer or NOTIFY that failed TSIG (RFC 8945): a bad or
// missing signature, a key the other side does not know, a clock too far
// off. Retrying another way (AXFR after IXFR) does not help.
var ErrTSIG = errors.New("tsig")

// tsigFudge is the time window we sign with (RFC 8945 §10: 300 s).
const tsigFudge = 300

// keyProvider implements dns.TsigProvider for one key. miekg/dns no longer
// computes HMAC-MD5, which old primaries still use, so we do it here.
type keyProvider struct {
	name, alg string // canonical
	secret    []byte
}

func newKeyProvider(k *Key) (*keyProvider, error) {
	raw, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return nil, err
	}
	return &keyProvider{name: k.Name, alg: k.Algorithm, secret: raw}, nil
}

func (p *keyProvider) hash(alg string) (hash.Hash, error) {
	if dns.CanonicalName(alg) != p.alg {
		return nil, fmt.Errorf("%w: algorithm %s, want %s", ErrTSIG, alg, p.alg)
	}
	var h func() hash.Hash
	switch p.alg {
	case hmacMD5:
		h = md5.New
	case dns.HmacSHA1:
		h = sha1.New
	case dns.HmacSHA224:
		h = sha256.New224
	case dns.HmacSHA256:
		h = sha256.New
	case dns.HmacSHA384:
		h = sha512.New384
	case dns.HmacSHA512:
		h = sha512.New
	default:
		return nil, dns.ErrKeyAlg
	}
	return hmac.New(h, p.secret), nil
}

// Generate implements dns.TsigProvider.
func (p *keyProvider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if dns.CanonicalName(t.Hdr.Name) != p.name {
		return nil, dns.ErrSecret
	}
	h, err := p.hash(t.Algorithm)
	if err != nil {
		return nil, err
	}
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify implements dns.TsigProvider.
func (p *keyProvider) Verify(msg []byte, t *dns.TSIG) error {
	want, err := p.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil {
		return err
	}
	// RFC 8945 §5.2.2.1 allows truncated MACs; we do not accept them.
	if !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// maxUnsigned is the longest run of unsigned answers accepted between two
// signed ones (RFC 8945 §5.3.1: a client MUST accept up to 99 and MUST NOT
// accept more).
const maxUnsigned = 99

// signer signs requests and verifies answers with one key, carrying the
// MAC chain across the messages of one exchange (RFC 8945 §5.3.1).
//
// The first answer must be signed; its MAC covers the request's MAC, the
// answer without its TSIG and all the TSIG variables. A server may then
// leave up to 99 answers in a row unsigned (NSD signs only every 96th
// message of an AXFR): the next signed answer's MAC covers the previous MAC,
// every unsigned answer since, as received, the answer itself without its
// TSIG, and the TSIG timers only. The last answer must be signed too:
// callers check that with end once the transfer is complete.
//
// The digest is computed here, not by miekg/dns, which cannot cover several
// messages; the unsigned answers are written into the running HMAC as they
// arrive, so nothing of them is kept.
type signer struct {
	p        *keyProvider
	mac      []byte    // MAC of our request, then of the last verified answer
	h        hash.Hash // after a signed answer: the digest of what the next MAC covers so far
	n        int       // answers seen (signed or not)
	unsigned int       // unsigned answers since the last signed one
	now      func() time.Time
}

func newSigner(k *Key) (*signer, error) {
	if k == nil {
		return nil, nil
	}
	p, err := newKeyProvider(k)
	if err != nil {
		return nil, err
	}
	return &signer{p: p, now: time.Now}, nil
}

// pack packs m, signed when s is not nil.
func (s *signer) pack(m *dns.Msg) ([]byte, error) {
	if s == nil {
		return m.Pack()
	}
	m.SetTsig(s.p.name, s.p.alg, tsigFudge, s.now().Unix())
	out, mac, err := dns.TsigGenerateWithProvider(m, s.p, "", false)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if s.mac, err = hex.DecodeString(mac); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s.h, s.n, s.unsigned = nil, 0, 0
	return out, nil
}

// verify checks the TSIG of one answer: raw is its wire form, m the
// unpacked message. An unsigned answer after the first is taken into the
// digest that the next signed answer must match.
func (s *signer) verify(raw []byte, m *dns.Msg) error {
	t := m.IsTsig()
	if s == nil {
		if t != nil {
			return fmt.Errorf("%w: answer signed with key %s, none configured", ErrTSIG, t.Hdr.Name)
		}
		return nil
	}
	s.n++
	if t == nil {
		switch {
		case s.n == 1 && (m.Rcode == dns.RcodeNotAuth || m.Rcode == dns.RcodeRefused):
			return fmt.Errorf("%w: primary answered %s (does it know key %s?)", ErrTSIG, dns.RcodeToString[m.Rcode], s.p.name)
		case s.h == nil: // the first answer, or one after a failure
			return fmt.Errorf("%w: answer not signed (key %s)", ErrTSIG, s.p.name)
		case s.unsigned >= maxUnsigned:
			return fmt.Errorf("%w: answers %d to %d are unsigned: more than %d in a row (RFC 8945 §5.3.1; key %s)", ErrTSIG, s.n-s.unsigned, s.n, maxUnsigned, s.p.name)
		}
		s.h.Write(raw)
		s.unsigned++
		return nil
	}
	if t.Error != dns.RcodeSuccess {
		return fmt.Errorf("%w: primary rejected our signature: %s (key %s, %s)", ErrTSIG, tsigRcode(t.Error), s.p.name, s.p.alg)
	}
	if dns.CanonicalName(t.Hdr.Name) != s.p.name {
		return fmt.Errorf("%w: answer signed with key %s, want %s", ErrTSIG, t.Hdr.Name, s.p.name)
	}
	fail := func(format string, args ...any) error {
		why := fmt.Sprintf(format, args...)
		if s.unsigned > 0 {
			why += fmt.Sprintf(", covering the %d unsigned answers before it", s.unsigned)
		}
		return fmt.Errorf("%w: answer %d: %s (key %s, %s)", ErrTSIG, s.n, why, s.p.name, s.p.alg)
	}
	// Whatever happens, nothing more is accepted on the digest so far.
	running := s.h
	s.h = nil
	if running == nil && s.n > 1 {
		return fail("follows an answer that failed")
	}
	want, err := s.digest(running, raw, t)
	if err != nil {
		return fail("%v", err)
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil {
		return fail("MAC is not hex: %v", err)
	}
	// RFC 8945 §5.2.2.1 allows truncated MACs; we do not accept them.
	if len(got) != len(want) {
		return fail("MAC of %d bytes, want %d (truncated MACs are not accepted)", len(got), len(want))
	}
	if !hmac.Equal(want, got) {
		return fail("bad signature (BADSIG)")
	}
	// The time is checked after the MAC (RFC 8945 §5.2.3), both ways: the
	// clocks may be skewed.
	now := uint64(s.now().Unix())
	skew := now - t.TimeSigned
	if now < t.TimeSigned {
		skew = t.TimeSigned - now
	}
	if skew > uint64(t.Fudge) {
		return fail("signed at %s, %d s from our clock, fudge %d s (BADTIME)",
			time.Unix(int64(t.TimeSigned), 0).UTC().Format(time.RFC3339), skew, t.Fudge)
	}
	s.mac, s.unsigned = got, 0
	// Start the digest of the next signed answer: the MAC just verified.
	h, err := s.p.hash(s.p.alg)
	if err != nil {
		return fail("%v", err)
	}
	writeMAC(h, s.mac)
	s.h = h
	return nil
}

// end reports an exchange whose last answers were unsigned: RFC 8945 §5.3.1
// requires the last message to be signed, and the records of unsigned
// answers after the last signed one are not authenticated.
func (s *signer) end() error {
	if s == nil || s.unsigned == 0 {
		return nil
	}
	return fmt.Errorf("%w: the last %d answers are unsigned: the last message must be signed (RFC 8945 §5.3.1; key %s)", ErrTSIG, s.unsigned, s.p.name)
}

// digest returns the MAC that answer raw, signed with t, must carry; running
// is the digest since the last signed answer, nil for the first. For the
// first answer it covers our request's MAC, the answer without its
// TSIG and the TSIG variables (RFC 8945 §4.3.3); after that, the running
// digest (previous MAC and unsigned answers), the answer without its TSIG
// and the timers (§5.3.1).
func (s *signer) digest(running hash.Hash, raw []byte, t *dns.TSIG) ([]byte, error) {
	off, err := tsigOffset(raw)
	if err != nil {
		return nil, err
	}
	if dns.CanonicalName(t.Algorithm) != s.p.alg {
		return nil, fmt.Errorf("signed with algorithm %s", t.Algorithm)
	}
	h := running
	if h == nil {
		if h, err = s.p.hash(s.p.alg); err != nil {
			return nil, err
		}
		writeMAC(h, s.mac)
	}
	// The answer without its TSIG: ARCOUNT less one, the original ID.
	var hdr [12]byte
	copy(hdr[:], raw)
	binary.BigEndian.PutUint16(hdr[0:], t.OrigId)
	binary.BigEndian.PutUint16(hdr[10:], binary.BigEndian.Uint16(hdr[10:])-1)
	h.Write(hdr[:])
	h.Write(raw[12:off])
	var b []byte
	if running == nil {
		// TSIG variables: name, class, TTL, algorithm, timers, error,
		// other data; names uncompressed, in canonical form.
		other, err := hex.DecodeString(t.OtherData)
		if err != nil {
			return nil, fmt.Errorf("other data: %v", err)
		}
		b = make([]byte, 0, 2*255+16+len(other))
		b = appendName(b, t.Hdr.Name)
		b = binary.BigEndian.AppendUint16(b, dns.ClassANY)
		b = binary.BigEndian.AppendUint32(b, t.Hdr.Ttl)
		b = appendName(b, t.Algorithm)
		b = appendTimers(b, t)
		b = binary.BigEndian.AppendUint16(b, t.Error)
		b = binary.BigEndian.AppendUint16(b, uint16(len(other)))
		b = append(b, other...)
	} else {
		b = appendTimers(nil, t)
	}
	h.Write(b)
	return h.Sum(nil), nil
}

// writeMAC writes a MAC as it is digested: its length in two bytes, then
// the MAC.
func writeMAC(h hash.Hash, mac []byte) {
	h.Write([]byte{byte(len(mac) >> 8), byte(len(mac))})
	h.Write(mac)
}

// appendTimers appends the TSIG timers: 48-bit time signed, 16-bit fudge.
func appendTimers(b []byte, t *dns.TSIG) []byte {
	b = append(b, byte(t.TimeSigned>>40), byte(t.TimeSigned>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(t.TimeSigned))
	return binary.BigEndian.AppendUint16(b, t.Fudge)
}

// appendName appends name in canonical wire form (lower case, no
// compression). It came from an unpacked message, so it packs.
func appendName(b []byte, name string) []byte {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf[:], 0, nil, false)
	if err != nil {
		return b
	}
	return append(b, buf[:n]...)
}

// tsigOffset returns where the TSIG record of raw starts: it must be the
// last record of the additional section and end the message.
func tsigOffset(raw []byte) (int, error) {
	bad := errors.New("malformed message: no TSIG at its end")
	if len(raw) < 12 {
		return 0, bad
	}
	count := func(i int) int { return int(binary.BigEndian.Uint16(raw[i:])) }
	qd, rrs := count(4), count(6)+count(8)+count(10)
	if rrs == 0 {
		return 0, bad
	}
	off := 12
	var ok bool
	for range qd {
		if off, ok = skipName(raw, off); !ok || off+4 > len(raw) {
			return 0, bad
		}
		off += 4
	}
	for range rrs - 1 {
		if off, ok = skipRR(raw, off); !ok {
			return 0, bad
		}
	}
	start := off
	nameEnd, ok := skipName(raw, off)
	if !ok || nameEnd+2 > len(raw) || binary.BigEndian.Uint16(raw[nameEnd:]) != dns.TypeTSIG {
		return 0, bad
	}
	if end, ok := skipRR(raw, off); !ok || end != len(raw) {
		return 0, bad
	}
	return start, nil
}

// skipRR returns the offset after the record at off.
func skipRR(raw []byte, off int) (int, bool) {
	off, ok := skipName(raw, off)
	if !ok || off+10 > len(raw) {
		return 0, false
	}
	off += 10 + int(binary.BigEndian.Uint16(raw[off+8:]))
	return off, off <= len(raw)
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(raw []byte, off int) (int, bool) {
	for off < len(raw) {
		c := int(raw[off])
		switch {
		case c == 0:
			return off + 1, true
		case c&0xC0 == 0xC0:
			return off + 2, off+2 <= len(raw)
		case c&0xC0 != 0:
			return 0, false // extended label types (RFC 6891 §5)
		}
		off += 1 + c
	}
	return 0, false
}

func tsigRcode(rc uint16) string {
	switch rc {
	case dns.RcodeBadSig:
		return "BADSIG"
	case dns.RcodeBadKey:
		return "BADKEY"
	case dns.RcodeBadTime:
		return "BADTIME"
	case dns.RcodeBadTrunc:
		return "BADTRUNC"
	}
	if s, ok := dns.RcodeToString[int(rc)]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

package xfr

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
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

// signer signs requests and verifies answers with one key, carrying the
// MAC chain across the messages of one exchange (RFC 8945 §5.3.1).
type signer struct {
	p   *keyProvider
	mac string // hex MAC of the last signed or verified message
	n   int    // answers verified so far
}

func newSigner(k *Key) (*signer, error) {
	if k == nil {
		return nil, nil
	}
	p, err := newKeyProvider(k)
	if err != nil {
		return nil, err
	}
	return &signer{p: p}, nil
}

// pack packs m, signed when s is not nil.
func (s *signer) pack(m *dns.Msg) ([]byte, error) {
	if s == nil {
		return m.Pack()
	}
	m.SetTsig(s.p.name, s.p.alg, tsigFudge, time.Now().Unix())
	out, mac, err := dns.TsigGenerateWithProvider(m, s.p, "", false)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s.mac, s.n = mac, 0
	return out, nil
}

// verify checks the TSIG of one answer: raw is its wire form, m the
// unpacked message. Every answer must be signed: RFC 8945 §5.3.1 lets a
// server leave up to 99 messages of a transfer unsigned, but BIND and Knot
// sign them all, and accepting unsigned ones would need a digest over
// several messages that miekg/dns cannot compute.
func (s *signer) verify(raw []byte, m *dns.Msg) error {
	t := m.IsTsig()
	if s == nil {
		if t != nil {
			return fmt.Errorf("%w: answer signed with key %s, none configured", ErrTSIG, t.Hdr.Name)
		}
		return nil
	}
	if t == nil {
		if m.Rcode == dns.RcodeNotAuth || m.Rcode == dns.RcodeRefused {
			return fmt.Errorf("%w: primary answered %s (does it know key %s?)", ErrTSIG, dns.RcodeToString[m.Rcode], s.p.name)
		}
		return fmt.Errorf("%w: answer not signed (key %s)", ErrTSIG, s.p.name)
	}
	if t.Error != dns.RcodeSuccess {
		return fmt.Errorf("%w: primary rejected our signature: %s (key %s, %s)", ErrTSIG, tsigRcode(t.Error), s.p.name, s.p.alg)
	}
	if dns.CanonicalName(t.Hdr.Name) != s.p.name {
		return fmt.Errorf("%w: answer signed with key %s, want %s", ErrTSIG, t.Hdr.Name, s.p.name)
	}
	// TsigVerifyWithProvider rewrites the buffer (ARCOUNT, ID): use a copy.
	buf := append([]byte(nil), raw...)
	if err := dns.TsigVerifyWithProvider(buf, s.p, s.mac, s.n > 0); err != nil {
		return fmt.Errorf("%w: bad signature on answer %d: %v (key %s, %s)", ErrTSIG, s.n+1, err, s.p.name, s.p.alg)
	}
	s.mac = t.MAC
	s.n++
	return nil
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

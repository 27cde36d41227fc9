package xfr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// HandleNotify answers a NOTIFY (RFC 1996) packet received from from, and
// triggers an immediate SOA check of the zone when the NOTIFY is accepted.
// It returns the response to send back on the same transport, or nil to
// send nothing (pkt is not a NOTIFY request, or too short to answer).
//
// A NOTIFY is accepted only from the address of one of the zone's
// primaries (any port: primaries notify from ephemeral ports) or a prefix in
// Zone.AllowNotify. When a primary at that address has a TSIG key, the
// NOTIFY must be signed with it and the answer is signed back. Everything
// else is answered REFUSED (unknown zone or source, missing signature) or
// NOTAUTH with the TSIG error (RFC 8945 §5.2), and logged.
//
// It takes the raw packet rather than a dns.Msg because the TSIG MAC covers
// the bytes as they were sent. Repeated NOTIFYs while a check is pending or
// running coalesce into one further check.
func (m *Manager) HandleNotify(pkt []byte, from netip.Addr) []byte {
	from = from.Unmap()
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		if len(pkt) < 12 || pkt[2]&0x80 != 0 || (pkt[2]>>3)&0xf != dns.OpcodeNotify {
			return nil
		}
		m.log.Info("malformed NOTIFY", "from", from.String(), "err", err)
		return formErr(pkt)
	}
	if req.Response || req.Opcode != dns.OpcodeNotify {
		return nil
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	if opt := req.IsEdns0(); opt != nil {
		// RFC 6891 §6.1.1: answer EDNS with EDNS (before any TSIG).
		resp.SetEdns0(ednsPayload, false)
	}
	if len(req.Question) != 1 || req.Question[0].Qtype != dns.TypeSOA || req.Question[0].Qclass != dns.ClassINET {
		resp.Rcode = dns.RcodeFormatError
		return pack(resp)
	}
	name := dns.CanonicalName(req.Question[0].Name)
	log := m.log.With("zone", name, "from", from.String())
	zs := m.zone(name)
	if zs == nil {
		log.Warn("NOTIFY refused: not a secondary zone here")
		resp.Rcode = dns.RcodeRefused
		return pack(resp)
	}
	keys, ok := zs.notifySource(from)
	if !ok {
		log.Warn("NOTIFY refused: source is not a primary of the zone")
		zs.denied()
		resp.Rcode = dns.RcodeRefused
		return pack(resp)
	}
	t := req.IsTsig()
	if t == nil && len(keys) > 0 {
		log.Warn("NOTIFY refused: not signed, and the zone's primaries use a TSIG key", "key", keys[0].Name)
		zs.denied()
		resp.Rcode = dns.RcodeRefused
		return pack(resp)
	}
	var p *keyProvider
	if t != nil {
		var key *Key
		for _, k := range keys {
			if k.Name == dns.CanonicalName(t.Hdr.Name) {
				key = k
			}
		}
		if key == nil {
			log.Warn("NOTIFY refused: signed with a key we do not have for this primary", "key", t.Hdr.Name)
			zs.denied()
			return tsigError(resp, t, dns.RcodeBadKey)
		}
		p, _ = newKeyProvider(key) // the secret was checked by New
		buf := append([]byte(nil), pkt...)
		if err := dns.TsigVerifyWithProvider(buf, p, "", false); err != nil {
			rc := uint16(dns.RcodeBadSig)
			if errors.Is(err, dns.ErrTime) {
				rc = dns.RcodeBadTime
			}
			log.Warn("NOTIFY refused: TSIG check failed", "key", key.Name, "err", err, "tsig_error", tsigRcode(rc))
			zs.denied()
			if rc == dns.RcodeBadTime {
				return signResp(resp, p, t, rc)
			}
			return tsigError(resp, t, rc)
		}
	}
	serial := -1
	for _, rr := range req.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			serial = int(soa.Serial)
		}
	}
	zs.mu.Lock()
	zs.stats.Notifies++
	if serial >= 0 {
		// The next check may skip its SOA query (RFC 1996 §3.11 lets
		// the NOTIFY carry the new SOA): see refresh.
		zs.hint = &notifyHint{serial: uint32(serial), from: from.Unmap()}
	}
	zs.mu.Unlock()
	log.Info("NOTIFY accepted", "serial", serial)
	zs.trigger()
	resp.Authoritative = true
	if p != nil {
		return signResp(resp, p, t, dns.RcodeSuccess)
	}
	return pack(resp)
}

func (zs *zoneState) denied() {
	zs.mu.Lock()
	zs.stats.NotifyDenied++
	zs.mu.Unlock()
}

func pack(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// formErr answers a packet that did not parse: its header, QR set, no
// sections, FORMERR.
func formErr(pkt []byte) []byte {
	out := make([]byte, 12)
	copy(out, pkt[:4])
	out[2] = out[2]&0x78 | 0x80 // keep the opcode, set QR, clear AA/TC/RD
	out[3] = dns.RcodeFormatError
	binary.BigEndian.PutUint16(out[4:], 0)
	return out
}

// tsigError answers with NOTAUTH and an unsigned TSIG carrying the error
// (RFC 8945 §5.3.2: BADKEY and BADSIG answers are not signed).
func tsigError(resp *dns.Msg, t *dns.TSIG, rc uint16) []byte {
	resp.Rcode = dns.RcodeNotAuth
	resp.Extra = append(resp.Extra, &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: uint64(time.Now().Unix()),
		Fudge:      tsigFudge,
		OrigId:     resp.Id,
		Error:      rc,
	})
	return pack(resp)
}

// signResp signs the answer to a signed request (the request's MAC is part
// of the digest).
func signResp(resp *dns.Msg, p *keyProvider, t *dns.TSIG, rc uint16) []byte {
	if rc != dns.RcodeSuccess {
		resp.Rcode = dns.RcodeNotAuth
	}
	now := time.Now().Unix()
	resp.SetTsig(p.name, p.alg, tsigFudge, now)
	ts := resp.Extra[len(resp.Extra)-1].(*dns.TSIG)
	ts.Error = rc
	if rc == dns.RcodeBadTime {
		// RFC 8945 §5.2.3: tell the client our time, a 48-bit count.
		ts.OtherLen, ts.OtherData = 6, fmt.Sprintf("%012x", now)
	}
	out, _, err := dns.TsigGenerateWithProvider(resp, p, t.MAC, false)
	if err != nil {
		return nil
	}
	return out
}

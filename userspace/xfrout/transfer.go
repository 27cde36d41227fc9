package xfrout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/xfr"
)

// msgBudget is the estimated size of the records packed into one transfer
// message: large enough that a big zone costs few messages (and few
// signatures), small enough that every name stays within reach of a
// compression pointer (offsets below 16 KiB) and the message far below the
// 64 KiB TCP limit whatever the OPT and TSIG records add.
const msgBudget = 16 << 10

// tsigFudge is the time window we sign with (RFC 8945 §10: 300 s).
const tsigFudge = 300

// ednsPayload is the payload size our OPT advertises (meaningless over TCP,
// but RFC 6891 wants one).
const ednsPayload = 1232

// How a transfer was answered, for logs and Stats.
const (
	styleAXFR        = "axfr"
	styleIncremental = "incremental" // IXFR with differences
	styleFull        = "full"        // IXFR answered with the whole zone
	styleCurrent     = "current"     // IXFR: the client is up to date
)

// HandleTransfer answers one AXFR or IXFR query received over TCP from
// from, writing each answer message to w framed with its two-byte length
// (RFC 7766 §8). It is server.Config.Transfer.
//
// Refusals (unknown zone, ACL, TSIG) and failures (no data, expired, too
// many transfers, malformed query) are one message with the rcode and
// return nil, so the connection stays open. An error means writing failed:
// the server then closes the connection.
func (s *Server) HandleTransfer(w io.Writer, pkt []byte, from netip.Addr) error {
	start := time.Now()
	from = from.Unmap()
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		s.Stats.Failed.Add(1)
		if len(pkt) < 12 {
			return fmt.Errorf("query of %d bytes", len(pkt))
		}
		s.log.Info("transfer query malformed", "from", from.String(), "err", err)
		return writeFramed(w, formErr(pkt), s.cfg.WriteTimeout)
	}
	o := &out{s: s, w: w, req: req}
	if opt := req.IsEdns0(); opt != nil {
		o.edns = true
		if opt.Version() != 0 {
			return o.fail(dns.RcodeBadVers)
		}
		for _, e := range opt.Option {
			if _, ok := e.(*dns.EDNS0_EXPIRE); ok {
				o.wantExpire = true
			}
		}
	}
	if req.Response || req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return o.fail(dns.RcodeFormatError)
	}
	q := req.Question[0]
	qtype := dns.TypeToString[q.Qtype]
	origin := dns.CanonicalName(q.Name)
	log := s.log.With("zone", origin, "type", qtype, "from", from.String())

	keyName := ""
	if t := req.IsTsig(); t != nil {
		keyName = dns.CanonicalName(t.Hdr.Name)
		log = log.With("key", keyName)
		if done, err := o.verify(t, pkt); done {
			log.Warn("transfer refused", "reason", "TSIG check failed", "tsig_error", o.tsigErr)
			return err
		}
	}
	if q.Qclass != dns.ClassINET {
		log.Info("transfer refused", "reason", "class not IN", "class", dns.ClassToString[q.Qclass])
		return o.fail(dns.RcodeRefused)
	}
	zc := s.zones[origin]
	if zc == nil {
		log.Warn("transfer refused", "reason", "zone not served to secondaries")
		return o.fail(dns.RcodeRefused)
	}
	if !zc.allowed(from, keyName) {
		reason := "source not in allow-transfer"
		if keyName == "" && len(zc.keys) > 0 {
			reason = "not signed with an allowed TSIG key"
		} else if keyName != "" && len(zc.keys) > 0 && !zc.keys[keyName] {
			reason = "TSIG key not allowed for this zone"
		}
		log.Warn("transfer refused", "reason", reason)
		return o.fail(dns.RcodeRefused)
	}
	var clientSerial uint32
	if q.Qtype == dns.TypeIXFR {
		soa := authoritySOA(req, origin)
		if soa == nil {
			log.Info("transfer refused", "reason", "IXFR without the zone's SOA in the authority section")
			return o.fail(dns.RcodeFormatError)
		}
		clientSerial = soa.Serial
		log = log.With("client_serial", clientSerial)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		log.Warn("transfer refused", "reason", "too many transfers in progress", "max", s.cfg.MaxTransfers)
		return o.fail(dns.RcodeServerFailure)
	}
	snap, ok := s.cfg.Source(origin)
	switch {
	case !ok || snap.Zone == nil:
		log.Warn("transfer refused", "reason", "zone not loaded")
		return o.fail(dns.RcodeServerFailure)
	case snap.Expired:
		log.Warn("transfer refused", "reason", "zone expired")
		return o.fail(dns.RcodeServerFailure)
	case snap.Zone.Origin != origin:
		log.Error("transfer refused", "reason", "Source returned another zone", "got", snap.Zone.Origin)
		return o.fail(dns.RcodeServerFailure)
	}
	if o.wantExpire {
		o.expire = expireSeconds(snap)
	}

	var rrs []dns.RR
	style := styleAXFR
	if q.Qtype == dns.TypeIXFR {
		rrs, style = ixfrRecords(snap, clientSerial)
	} else {
		rrs = axfrRecords(snap)
	}
	if err := o.stream(rrs); err != nil {
		s.Stats.Failed.Add(1)
		log.Warn("transfer cut", "serial", snap.Zone.Serial(), "messages", o.n, "err", err)
		return err
	}
	switch style {
	case styleAXFR:
		s.Stats.AXFR.Add(1)
	case styleIncremental:
		s.Stats.IXFRIncremental.Add(1)
	case styleFull:
		s.Stats.IXFRFull.Add(1)
	case styleCurrent:
		s.Stats.IXFRCurrent.Add(1)
	}
	log.Info("transfer out", "style", style, "serial", snap.Zone.Serial(),
		"messages", o.n, "records", len(rrs), "duration", time.Since(start).Round(time.Microsecond))
	return nil
}

// authoritySOA returns the SOA of origin in the query's authority section
// (RFC 1995 §3: the client's version), or nil.
func authoritySOA(req *dns.Msg, origin string) *dns.SOA {
	for _, rr := range req.Ns {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == origin {
			return soa
		}
	}
	return nil
}

// expireSeconds is the EDNS EXPIRE value of a snapshot (RFC 7314 §4): the
// time left when known, else the SOA expire.
func expireSeconds(snap Snapshot) uint32 {
	if snap.Expire > 0 {
		sec := (snap.Expire + time.Second - 1) / time.Second
		return uint32(min(sec, 1<<32-1))
	}
	return snap.Zone.SOA.Expire
}

// soaCopy returns a copy of the zone's SOA: packing a record writes its
// RDLENGTH, and the zone's records are shared with every reader.
func soaCopy(snap Snapshot) dns.RR { return dns.Copy(snap.Zone.SOA) }

// axfrRecords is the AXFR stream (RFC 5936 §2.2): SOA, every other record,
// SOA. Records builds them afresh except the SOA, which we copy.
func axfrRecords(snap Snapshot) []dns.RR {
	rrs := snap.Zone.Records()
	soa := soaCopy(snap)
	rrs[0] = soa
	return append(rrs, soa)
}

// ixfrRecords is the IXFR answer (RFC 1995 §4) to a client at serial cur:
// our SOA alone when the client is current or newer; the differences from
// its serial to ours when the journal holds them all; else the whole zone.
func ixfrRecords(snap Snapshot, cur uint32) ([]dns.RR, string) {
	ours := snap.Zone.Serial()
	switch xfr.CompareSerial(cur, ours) {
	case xfr.Equal, xfr.Greater:
		return []dns.RR{soaCopy(snap)}, styleCurrent
	}
	diffs := journalFrom(snap.Journal, cur, ours)
	if diffs == nil {
		rrs := axfrRecords(snap)
		return rrs, styleFull
	}
	soa := soaCopy(snap)
	n := 2
	for _, d := range diffs {
		n += d.Len()
	}
	rrs := make([]dns.RR, 0, n)
	rrs = append(rrs, soa)
	for _, d := range diffs {
		// Deleted starts with the old SOA, Added with the new one: the
		// sequence RFC 1995 §4 sends. The journal is shared: copy.
		for _, rr := range d.Deleted {
			rrs = append(rrs, dns.Copy(rr))
		}
		for _, rr := range d.Added {
			rrs = append(rrs, dns.Copy(rr))
		}
	}
	return append(rrs, soa), styleIncremental
}

// journalFrom returns the diffs that lead from serial from to serial to, or
// nil when the journal does not hold an unbroken chain between them.
func journalFrom(journal []xfr.Diff, from, to uint32) []xfr.Diff {
	start := -1
	for i, d := range journal {
		if d.From == from {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	chain := journal[start:]
	for i, d := range chain {
		if !diffSOAs(d) || (i > 0 && chain[i-1].To != d.From) {
			return nil
		}
	}
	if chain[len(chain)-1].To != to {
		return nil
	}
	return chain
}

// diffSOAs reports whether d has the shape ixfrRecords relies on: Deleted
// opens with the SOA of From, Added with the SOA of To.
func diffSOAs(d xfr.Diff) bool {
	if len(d.Deleted) == 0 || len(d.Added) == 0 {
		return false
	}
	del, ok1 := d.Deleted[0].(*dns.SOA)
	add, ok2 := d.Added[0].(*dns.SOA)
	return ok1 && ok2 && del.Serial == d.From && add.Serial == d.To
}

// out writes the answer to one transfer query.
type out struct {
	s   *Server
	w   io.Writer
	req *dns.Msg

	key     *keyState // signs every answer; nil: unsigned
	mac     string    // the MAC the next answer chains to (RFC 8945 §5.3.1)
	tsigErr string    // for the log, when the request failed TSIG

	edns       bool
	wantExpire bool
	expire     uint32 // EDNS EXPIRE to answer, when wantExpire

	n int // messages written
}

// verify checks the request's TSIG. On success the answers will be signed
// with that key. On failure it answers the error (RFC 8945 §5.2) and
// returns done.
func (o *out) verify(t *dns.TSIG, pkt []byte) (done bool, err error) {
	k := o.s.keys[dns.CanonicalName(t.Hdr.Name)]
	if k == nil || dns.CanonicalName(t.Algorithm) != k.Algorithm {
		o.tsigErr = "BADKEY"
		return true, o.tsigFail(t, dns.RcodeBadKey)
	}
	buf := append([]byte(nil), pkt...) // the check rewrites ID and ARCOUNT
	if verr := dns.TsigVerifyWithProvider(buf, k.p, "", false); verr != nil {
		if errors.Is(verr, dns.ErrTime) {
			o.tsigErr = "BADTIME"
			o.key, o.mac = k, t.MAC
			return true, o.tsigFail(t, dns.RcodeBadTime)
		}
		o.tsigErr = "BADSIG"
		return true, o.tsigFail(t, dns.RcodeBadSig)
	}
	o.key, o.mac = k, t.MAC
	return false, nil
}

// tsigFail answers NOTAUTH with the TSIG error: unsigned for BADKEY and
// BADSIG (RFC 8945 §5.3.2), signed with our time for BADTIME (§5.2.3).
func (o *out) tsigFail(t *dns.TSIG, rc uint16) error {
	o.s.Stats.Refused.Add(1)
	m := o.reply(nil)
	m.Rcode = dns.RcodeNotAuth
	if rc == dns.RcodeBadTime {
		return o.send(m, func(ts *dns.TSIG) {
			ts.Error = rc
			ts.OtherLen, ts.OtherData = 6, fmt.Sprintf("%012x", ts.TimeSigned)
		})
	}
	m.Extra = append(m.Extra, &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: uint64(time.Now().Unix()),
		Fudge:      tsigFudge,
		OrigId:     m.Id,
		Error:      rc,
	})
	o.key = nil
	return o.send(m, nil)
}

// fail answers with one message carrying rcode and the question.
func (o *out) fail(rcode int) error {
	if rcode == dns.RcodeRefused {
		o.s.Stats.Refused.Add(1)
	} else {
		o.s.Stats.Failed.Add(1)
	}
	m := o.reply(nil)
	m.Rcode = rcode
	m.Authoritative = false
	return o.send(m, nil)
}

// reply returns an answer message holding rrs, the question in the first
// message only (RFC 5936 §2.2.1), and our OPT when the query had one.
func (o *out) reply(rrs []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(o.req)
	if o.n > 0 {
		m.Question = nil
	}
	m.Authoritative = true
	m.Compress = true
	m.Answer = rrs
	if o.edns {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(ednsPayload)
		if o.wantExpire && o.expire != 0 {
			opt.Option = append(opt.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Expire: o.expire})
		}
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// stream writes rrs as a series of messages of about msgBudget bytes each.
func (o *out) stream(rrs []dns.RR) error {
	est := sizer{}
	var batch []dns.RR
	size := 0
	for _, rr := range rrs {
		n := est.size(rr)
		if len(batch) > 0 && size+n > msgBudget {
			if err := o.send(o.reply(batch), nil); err != nil {
				return err
			}
			batch, size = nil, 0
			est = sizer{}
			n = est.size(rr)
		}
		batch = append(batch, rr)
		size += n
	}
	return o.send(o.reply(batch), nil)
}

// send packs m, signs it when the request was signed (chaining each MAC to
// the previous one: RFC 8945 §5.3.1, all messages signed), and writes it.
// tweak, when set, adjusts the TSIG record before signing.
func (o *out) send(m *dns.Msg, tweak func(*dns.TSIG)) error {
	var b []byte
	var err error
	if o.key != nil {
		m.SetTsig(o.key.Name, o.key.Algorithm, tsigFudge, time.Now().Unix())
		if tweak != nil {
			tweak(m.Extra[len(m.Extra)-1].(*dns.TSIG))
		}
		var mac string
		b, mac, err = dns.TsigGenerateWithProvider(m, o.key.p, o.mac, o.n > 0)
		o.mac = mac
	} else {
		b, err = m.Pack()
	}
	if err != nil {
		return fmt.Errorf("pack message %d: %w", o.n+1, err)
	}
	if len(b) > 0xffff {
		return fmt.Errorf("message %d: %d bytes, over the TCP limit", o.n+1, len(b))
	}
	o.n++
	return writeFramed(o.w, b, o.s.cfg.WriteTimeout)
}

// writeFramed writes b with its two-byte length prefix, bounded by timeout
// when w can take a deadline (a net.Conn).
func writeFramed(w io.Writer, b []byte, timeout time.Duration) error {
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(time.Now().Add(timeout))
	}
	buf := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// formErr answers a query that did not parse: its header with QR set and
// FORMERR, no sections.
func formErr(pkt []byte) []byte {
	out := make([]byte, 12)
	copy(out, pkt[:4])
	out[2] = out[2]&0x78 | 0x80 // keep the opcode, set QR, clear AA/TC/RD
	out[3] = dns.RcodeFormatError
	return out
}

// sizer estimates the packed size of records added to one message: the
// uncompressed length less what compression saves on owner names already
// seen (names inside RDATA are counted whole, so it overestimates).
type sizer map[string]struct{}

func (z sizer) size(rr dns.RR) int {
	n := dns.Len(rr)
	name := rr.Header().Name
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		suffix := name[off:]
		if _, ok := z[suffix]; ok {
			return n - (len(suffix) + 1) + 2 // the suffix becomes a pointer
		}
		z[suffix] = struct{}{}
	}
	return n
}

// Package responder turns a query packet into a response packet. It is the
// source of truth for every answer xdpns gives: the UDP and TCP servers call
// it, and the XDP maps hold bodies it would send (compiled by package compile
// from the same engine), composed the same way (package wire).
package responder

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/cookie"
	"github.com/xdpns/xdpns/userspace/shardmap"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// Config is what the responder needs from the configuration.
type Config struct {
	UDPPayload uint16 // our EDNS payload size; 0 means 1232
	NSID       string // RFC 5001 identifier; empty: off
	Identity   string // CHAOS id.server and hostname.bind; empty: REFUSED
	Version    string // CHAOS version.bind; empty: REFUSED
	// Expire returns the seconds left before a zone expires, for EDNS
	// EXPIRE (RFC 7314) in answers to SOA queries: secondaries of ours must
	// not outlive our primary's data. Nil, or false for a zone: the SOA
	// expire (right for zones loaded from files, RFC 7314 §4).
	Expire func(origin string) (uint32, bool)
	// Cookies, when set, answers DNS cookies (RFC 7873, RFC 9018 server
	// cookies): every response to a query with a COOKIE option carries
	// the client cookie and a server cookie. RequireCookie answers UDP
	// queries that carry a client cookie but no valid server cookie with
	// BADCOOKIE (RFC 7873 §5.2.3), the new server cookie in it.
	Cookies       *cookie.Jar
	RequireCookie bool
}

// DefaultUDPPayload is the EDNS payload size we advertise by default
// (DNS flag day 2020: no fragmentation on common paths).
const DefaultUDPPayload = 1232

// EDE codes (RFC 8914 §4).
const edeNotAuthoritative = 20

// Zone is one served zone: the snapshot and its compiled answers.
type Zone struct {
	Zone  *zone.Zone
	Table *compile.Table
	// Expired zones answer SERVFAIL (RFC 1035 §4.3.5 expire).
	Expired bool
	// Origin names a zone that has no data yet (Zone is nil): a secondary
	// not transferred yet answers SERVFAIL, as BIND does, not REFUSED: we
	// are authoritative for it, just not able to answer.
	Origin string

	// queries counts the queries this zone was found for (every answer,
	// SERVFAIL included). It is the zone's, not the version's: Put and
	// SetServed hand it from the version replaced to the new one, and it
	// goes with the zone when the zone is removed.
	queries *zoneQueries
}

// zoneQueries is a zone's query counter on a cache line of its own: the
// sockets' goroutines add to it on every query, and a neighbour's
// counter must not bounce their line.
type zoneQueries struct {
	_ [64]byte
	n atomic.Uint64
	_ [56]byte
}

// adopt gives z the counter of prev, the version of its zone served
// until now, or a new one. Called before z is published, under the
// caller's serialisation of zone changes.
func (z *Zone) adopt(prev *Zone) {
	switch {
	case z.queries != nil:
	case prev != nil && prev.queries != nil:
		z.queries = prev.queries
	default:
		z.queries = new(zoneQueries)
	}
}

// Pending returns the placeholder for a zone configured but not loaded yet.
func Pending(origin string) *Zone {
	return &Zone{Origin: dns.CanonicalName(origin), Expired: true}
}

func (z *Zone) origin() string {
	if z.Zone != nil {
		return z.Zone.Origin
	}
	return z.Origin
}

// zones is one version of the served set. It is copied on write, shard by
// shard (shardmap): a provider's server holds thousands of zones, adds and
// removes them one at a time (run-time zones, catalog members), and a full
// copy per change made loading 10,000 zones quadratic (3.7 s of a 25 s
// start in a profile).
type zones struct {
	byName *shardmap.Map[*Zone] // key: lowercased wire name of the origin
}

// with returns the set with k set to z (or removed, for nil).
func (zs *zones) with(k string, z *Zone) *zones {
	e := zs.byName.Edit()
	if z != nil {
		e.Set(k, z)
	} else {
		e.Delete(k)
	}
	m := e.Map()
	if m.Crowded() {
		// Every Put copies a shard: shards of about 48 zones, not 192,
		// make a fleet's start (three Puts a zone: placeholder, engine,
		// compiled) 30,000 copies of 4 us, not of 18 us.
		m = m.RebuiltFor(4 * m.Len())
	}
	return &zones{byName: m}
}

// Responder answers queries. It is safe for concurrent use; zone sets are
// swapped atomically, so a query sees one whole set.
type Responder struct {
	cfg   Config
	zones atomic.Pointer[zones]
	nsid  []byte // encoded NSID option, or nil
}

// New returns a responder serving no zones.
func New(cfg Config) *Responder {
	if cfg.UDPPayload == 0 {
		cfg.UDPPayload = DefaultUDPPayload
	}
	r := &Responder{cfg: cfg}
	if cfg.NSID != "" {
		r.nsid = wire.AppendOption(nil, wire.OptionNSID, []byte(cfg.NSID))
	}
	r.zones.Store(&zones{byName: shardmap.New[*Zone](0)})
	return r
}

// Config returns the responder's configuration.
func (r *Responder) Config() Config { return r.cfg }

// Compile builds the served form of a zone.
func Compile(z *zone.Zone) (*Zone, error) {
	t, err := compile.Build(z)
	if err != nil {
		return nil, err
	}
	return &Zone{Zone: z, Table: t}, nil
}

// CompileFrom builds the served form of z from prev, the version served
// until now: when z was made from prev.Zone by zone.Apply, only the answers
// the change affects are compiled again (compile.Update), else all of them.
// The changes are returned for mirrors of the table (the XDP maps); nil when
// everything was compiled afresh.
func CompileFrom(prev *Zone, z *zone.Zone) (*Zone, *compile.Changes, error) {
	if prev == nil || prev.Table == nil || prev.Zone == nil {
		rz, err := Compile(z)
		return rz, nil, err
	}
	d := z.DeltaFrom(prev.Zone)
	if d == nil {
		rz, err := Compile(z)
		return rz, nil, err
	}
	t, ch, err := compile.Update(prev.Table, z, d)
	if err != nil {
		return nil, nil, err
	}
	return &Zone{Zone: z, Table: t}, ch, nil
}

// SetZones compiles zs and replaces the served set with them. A zone whose
// answers fail to compile is still served, by the engine alone.
func (r *Responder) SetZones(zs []*zone.Zone) {
	served := make([]*Zone, 0, len(zs))
	for _, z := range zs {
		s, err := Compile(z)
		if err != nil {
			s = &Zone{Zone: z}
		}
		served = append(served, s)
	}
	r.SetServed(served)
}

// SetServed replaces the served set with zones already compiled.
func (r *Responder) SetServed(zs []*Zone) {
	old := r.zones.Load().byName
	e := shardmap.Builder[*Zone](len(zs))
	for _, z := range zs {
		k := string(wireName(z.origin()))
		prev, _ := old.Get(k)
		z.adopt(prev)
		e.Set(k, z)
	}
	r.zones.Store(&zones{byName: e.Map()})
}

// Put adds or replaces one zone, leaving the others.
func (r *Responder) Put(z *Zone) {
	k := string(wireName(z.origin()))
	for {
		old := r.zones.Load()
		prev, _ := old.byName.Get(k)
		z.adopt(prev)
		if r.zones.CompareAndSwap(old, old.with(k, z)) {
			return
		}
	}
}

// Remove stops serving the zone with this origin.
func (r *Responder) Remove(origin string) {
	k := string(wireName(dns.CanonicalName(origin)))
	for {
		old := r.zones.Load()
		if _, ok := old.byName.Get(k); !ok {
			return
		}
		if r.zones.CompareAndSwap(old, old.with(k, nil)) {
			return
		}
	}
}

// ZoneQueries calls fn with each zone served (its canonical origin) and
// the queries it was found for since it was added (versions replaced
// since included, a removed and re-added zone starts again from 0).
func (r *Responder) ZoneQueries(fn func(origin string, n uint64)) {
	r.zones.Load().byName.Range(func(_ string, z *Zone) bool {
		var n uint64
		if z.queries != nil {
			n = z.queries.n.Load()
		}
		fn(z.origin(), n)
		return true
	})
}

// Zone returns the served zone with this origin, or nil.
func (r *Responder) Zone(origin string) *Zone {
	z, _ := r.zones.Load().byName.Get(string(wireName(dns.CanonicalName(origin))))
	return z
}

func wireName(name string) []byte {
	buf := make([]byte, wire.MaxNameLen)
	n, _ := dns.PackDomainName(name, buf, 0, nil, false)
	return buf[:n]
}

// find returns the zone with the longest origin that encloses the lowercased
// wire name.
func (zs *zones) find(name []byte) *Zone {
	for off := 0; off < len(name); off += int(name[off]) + 1 {
		if z, _ := zs.byName.GetBytes(name[off:]); z != nil {
			return z
		}
		if name[off] == 0 {
			break
		}
	}
	return nil
}

// Scratch is per-goroutine working memory for Respond.
type Scratch struct {
	q    wire.Query
	opts []byte
	// From is the client's address, set by the server before Respond:
	// server cookies are made for it.
	From netip.Addr
	// CookieOK says the last query carried a valid server cookie (it is
	// then exempt from rate limiting).
	CookieOK bool
}

// RcodeBadCookie is BADCOOKIE (RFC 7873 §8), an extended RCODE.
const RcodeBadCookie = 23

// Respond appends the response to pkt to dst and returns it; nil means send
// nothing. tcp selects the TCP size limit and full ANY answers.
func (r *Responder) Respond(s *Scratch, dst, pkt []byte, tcp bool) []byte {
	q := &s.q
	resp := wire.Response{Payload: r.cfg.UDPPayload, Limit: 65535}
	err := wire.ParseQuery(pkt, q)
	if !tcp {
		resp.Limit = q.UDPLimit(r.cfg.UDPPayload)
	}
	switch err {
	case nil:
	case wire.ErrDrop:
		return nil
	case wire.ErrNotImpl:
		q.Question, q.EDNS = nil, false // not parsed
		return r.fail(dst, q, &resp, dns.RcodeNotImplemented)
	case wire.ErrBadVers:
		// RFC 6891 §6.1.3: BADVERS, our version (0) in the OPT, no data.
		return r.fail(dst, q, &resp, dns.RcodeBadVers)
	default:
		return r.fail(dst, q, &resp, dns.RcodeFormatError)
	}
	s.CookieOK = false
	resp.Options = s.opts[:0]
	if q.NSID && r.nsid != nil {
		resp.Options = append(resp.Options, r.nsid...)
	}
	if q.HasCookie && r.cfg.Cookies != nil && q.EDNS {
		if fail := r.cookie(s, q, &resp, tcp); fail >= 0 {
			return r.fail(dst, q, &resp, fail)
		}
	}
	switch q.Class {
	case dns.ClassINET, dns.ClassANY:
		// QCLASS * matches any class (RFC 1035 §3.2.5): we only have IN.
	case dns.ClassCHAOS:
		return r.chaos(dst, q, &resp)
	default:
		return r.fail(dst, q, &resp, dns.RcodeRefused)
	}
	switch q.Type {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		return r.fail(dst, q, &resp, dns.RcodeFormatError)
	case dns.TypeMAILA, dns.TypeMAILB:
		return r.fail(dst, q, &resp, dns.RcodeNotImplemented)
	case dns.TypeAXFR, dns.TypeIXFR:
		// Transfers are not served yet.
		return r.fail(dst, q, &resp, dns.RcodeRefused)
	}
	z := r.zones.Load().find(q.Name())
	if z == nil {
		if q.EDNS {
			resp.Options = appendEDE(resp.Options, edeNotAuthoritative, "")
		}
		return r.fail(dst, q, &resp, dns.RcodeRefused)
	}
	if z.queries != nil {
		z.queries.n.Add(1)
	}
	if z.Expired || z.Zone == nil {
		return r.fail(dst, q, &resp, dns.RcodeServerFailure)
	}
	if q.Expire && q.Type == dns.TypeSOA && q.EDNS {
		resp.Options = appendExpire(resp.Options, r.expire(z.Zone))
	}
	if q.Type != dns.TypeANY && q.Class == dns.ClassINET && z.Table != nil {
		if b, ok := z.Table.Lookup(q.Key, q.DO); ok {
			return wire.Compose(dst, q, &b, &resp)
		}
	}
	name, _, err := dns.UnpackDomainName(q.Name(), 0)
	if err != nil {
		return r.fail(dst, q, &resp, dns.RcodeFormatError)
	}
	res := answer.Lookup(z.Zone, answer.Query{Name: name, Type: q.Type, DO: q.DO, TCP: tcp})
	if q.Class == dns.ClassANY {
		// We hold class IN only, so an answer to QCLASS * may be incomplete:
		// not authoritative, and an IN SOA proves no absence in other
		// classes (NSD answers the same way).
		res.Authoritative = false
		if res.Kind == answer.NoData || res.Kind == answer.NameError {
			res.Ns = nil
		}
	}
	b, err := wire.EncodeOpt(name, q.Type, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra, res.ExtraOptional)
	if err != nil {
		return r.fail(dst, q, &resp, dns.RcodeServerFailure)
	}
	return wire.Compose(dst, q, &b, &resp)
}

// fail writes a response with no records: header, the question when it was
// parsed, and the OPT when the query had one.
func (r *Responder) fail(dst []byte, q *wire.Query, resp *wire.Response, rcode int) []byte {
	b := wire.Body{Rcode: uint8(rcode & 0xf)}
	resp.ExtRcode = uint8(rcode >> 4)
	return wire.Compose(dst, q, &b, resp)
}

func (r *Responder) expire(z *zone.Zone) uint32 {
	if r.cfg.Expire != nil {
		if v, ok := r.cfg.Expire(z.Origin); ok {
			return v
		}
	}
	return z.SOA.Expire
}

func appendExpire(dst []byte, seconds uint32) []byte {
	return wire.AppendOption(dst, wire.OptionExpire, []byte{byte(seconds >> 24), byte(seconds >> 16), byte(seconds >> 8), byte(seconds)})
}

func appendEDE(dst []byte, code uint16, text string) []byte {
	data := []byte{byte(code >> 8), byte(code)}
	return wire.AppendOption(dst, wire.OptionEDE, append(data, text...))
}

// chaos answers the CHAOS TXT names servers conventionally answer
// (id.server, hostname.bind, version.bind), when configured.
func (r *Responder) chaos(dst []byte, q *wire.Query, resp *wire.Response) []byte {
	name, _, err := dns.UnpackDomainName(q.Name(), 0)
	if err != nil {
		return r.fail(dst, q, resp, dns.RcodeFormatError)
	}
	var text string
	switch strings.ToLower(name) {
	case "id.server.", "hostname.bind.":
		text = r.cfg.Identity
	case "version.bind.", "version.server.":
		text = r.cfg.Version
	}
	if text == "" {
		return r.fail(dst, q, resp, dns.RcodeRefused)
	}
	if q.Type != dns.TypeTXT && q.Type != dns.TypeANY {
		b, _ := wire.Encode(name, q.Type, dns.RcodeSuccess, true, nil, nil, nil)
		return wire.Compose(dst, q, &b, resp)
	}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{text}}
	m := dns.Msg{Compress: true, Question: []dns.Question{{Name: name, Qtype: q.Type, Qclass: dns.ClassCHAOS}}, Answer: []dns.RR{txt}}
	buf, err := m.Pack()
	if err != nil {
		return r.fail(dst, q, resp, dns.RcodeServerFailure)
	}
	b := wire.Body{AA: true, An: 1, Bytes: buf[wire.HeaderLen+len(q.Question):]}
	return wire.Compose(dst, q, &b, resp)
}

// cookie adds the COOKIE option to the response (RFC 7873 §5.2) and
// returns the RCODE to fail with, or -1 to answer: FORMERR for a malformed
// option (§5.2.2, without a cookie in the answer), BADCOOKIE when a valid
// server cookie is required and missing (§5.2.3); a bad server cookie is
// handled as a client cookie alone (§5.2.4).
func (r *Responder) cookie(s *Scratch, q *wire.Query, resp *wire.Response, tcp bool) int {
	base := len(resp.Options)
	opts := append(resp.Options, 0, wire.OptionCookie, 0, 0)
	opts, valid, err := r.cfg.Cookies.Answer(opts, q.Cookie, s.From)
	if err != nil {
		resp.Options = opts[:base]
		return dns.RcodeFormatError
	}
	binary.BigEndian.PutUint16(opts[base+2:], uint16(len(opts)-base-4))
	resp.Options = opts
	s.opts = opts[:0] // keep the grown buffer
	s.CookieOK = valid
	if !valid && !tcp && r.cfg.RequireCookie {
		return RcodeBadCookie
	}
	return -1
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// A group is a set of scenarios served from the same zone by the same
// running servers: hit, miss and ipv6 share the plain zone; mixed has the
// signed zone; updates has secondaries; large the big zone.
type group struct {
	name      string
	scenarios []string
	zoneFile  string
	names     int
	records   int
	secondary bool // every server a secondary of a primary in its namespace
	signed    bool
	rrl       bool // every server limits responses (rrl-flood)
	// Query files by scenario: kxdpgun's ("name type [E|D]") and dnsperf's
	// ("name type").
	gunFile, perfFile map[string]string
	questions         []question
	index             *zoneIndex
}

// groupOf says which group a scenario belongs to.
func groupOf(sc string) string {
	switch sc {
	case "hit", "miss", "ipv6":
		return "plain"
	case "mixed":
		return "signed"
	case "updates":
		return "updates"
	case "wildcard", "random-subdomain":
		return "wild"
	case "referral":
		return "referral"
	case "nxdomain-nsec":
		return "nsec"
	case "nxdomain-nsec3":
		return "nsec3"
	case "nxdomain-nsec3-iter":
		return "nsec3-iter"
	case "rrl-flood":
		return "rrl"
	default:
		return "large"
	}
}

// planGroups orders the scenarios into groups, in the order of
// allScenarios.
func planGroups(scenarios []string) []*group {
	var out []*group
	byName := map[string]*group{}
	for _, sc := range allScenarios {
		if !contains(scenarios, sc) {
			continue
		}
		gn := groupOf(sc)
		g := byName[gn]
		if g == nil {
			g = &group{name: gn, gunFile: map[string]string{}, perfFile: map[string]string{}}
			byName[gn] = g
			out = append(out, g)
		}
		g.scenarios = append(g.scenarios, sc)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// prepare writes g's zone (signing it for the signed group), its query
// files and its checks, under dir.
func (g *group) prepare(ctx context.Context, o *options, dir string) error {
	dir = filepath.Join(dir, g.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g.names = o.names
	if g.name == "large" {
		g.names = o.largeNames
	}
	g.secondary = g.name == "updates"
	g.rrl = g.name == "rrl"
	g.zoneFile = filepath.Join(dir, "bench.test.zone")
	var err error
	switch g.name {
	case "signed":
		g.records, err = writeMixedZone(g.zoneFile, g.names)
	case "wild":
		g.records, err = writeWildZone(g.zoneFile, g.names)
	case "referral":
		g.records, err = writeReferralZone(g.zoneFile, g.names)
	default:
		g.records, err = lab.WriteZone(g.zoneFile, origin, g.names)
	}
	switch g.name {
	case "signed", "nsec", "nsec3", "nsec3-iter":
		g.signed = true
		if err == nil {
			g.zoneFile, g.records, err = signZone(ctx, dir, g.zoneFile, signArgs(g.name)...)
		}
	}
	if err != nil {
		return err
	}
	for _, sc := range g.scenarios {
		g.gunFile[sc] = filepath.Join(dir, sc+".kxdpgun")
		g.perfFile[sc] = filepath.Join(dir, sc+".dnsperf")
		qs := queriesFor(sc, g.names)
		if err := writeQueryFiles(g.gunFile[sc], g.perfFile[sc], qs); err != nil {
			return err
		}
	}
	g.questions = questionsFor(g)
	g.index, err = indexZone(g.zoneFile, g.questions)
	return err
}

// query is one line of a query file.
type query struct {
	name  string
	qtype string
	do    bool
}

// queriesFor lists a scenario's queries in a fixed shuffled order (seeded,
// so runs are comparable). Every query carries EDNS (payload 1232), as
// resolvers send them; in mixed, half carry DO.
func queriesFor(sc string, n int) []query {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	qs := coverageQueries(sc, n, r)
	switch {
	case qs != nil:
	case sc == "miss":
		// Random names under the zone: NXDOMAIN.
		for i := range min(2*n, 200000) {
			t := "A"
			if i%2 == 1 {
				t = "AAAA"
			}
			qs = append(qs, query{name: fmt.Sprintf("nx%08x.%s", r.Uint32(), origin), qtype: t})
		}
	case sc == "mixed":
		for i := range n {
			h := lab.Host(i) + "." + origin
			qs = append(qs, query{name: h, qtype: "A"}, query{name: h, qtype: "AAAA"})
			switch i % 4 {
			case 0:
				qs = append(qs, query{name: h, qtype: "MX"}, query{name: h, qtype: "TXT"})
			case 1:
				qs = append(qs, query{name: h, qtype: "MX"}) // NODATA
			case 2:
				qs = append(qs, query{name: h, qtype: "SRV"}) // NODATA
			}
			if i%50 == 0 {
				qs = append(qs, query{name: origin, qtype: "NS"}, query{name: origin, qtype: "SOA"})
			}
		}
		for i := range qs {
			qs[i].do = i%2 == 0
		}
	default: // hit, ipv6, updates, large
		for i := range n {
			h := lab.Host(i) + "." + origin
			qs = append(qs, query{name: h, qtype: "A"}, query{name: h, qtype: "AAAA"})
		}
	}
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

// writeQueryFiles writes qs for kxdpgun (flag E: EDNS, D: EDNS and DO)
// and for dnsperf (no flags: -e or -D on its command line).
func writeQueryFiles(gunPath, perfPath string, qs []query) error {
	write := func(path string, line func(q query) string) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for _, q := range qs {
			w.WriteString(line(q))
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	err := write(gunPath, func(q query) string {
		flag := "E"
		if q.do {
			flag = "D"
		}
		return q.name + " " + q.qtype + " " + flag + "\n"
	})
	if err != nil {
		return err
	}
	return write(perfPath, func(q query) string { return q.name + " " + q.qtype + "\n" })
}

// writeMixedZone writes the zone of the mixed scenario: the plain zone's
// names (one A and one AAAA each), every fourth with an MX and a TXT as
// well, and an MX and a TXT at the apex.
func writeMixedZone(path string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL 3600\n", origin)
	fmt.Fprintf(w, "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 198.18.0.53\n")
	fmt.Fprintf(w, "@ IN MX 10 host0\n@ IN TXT \"bench zone\"\n")
	records := 7
	for i := range n {
		h := lab.Host(i)
		fmt.Fprintf(w, "%s IN A %s\n%s IN AAAA %s\n", h, lab.HostA(i), h, lab.HostAAAA(i))
		records += 2
		if i%4 == 0 {
			fmt.Fprintf(w, "%s IN MX 10 %s\n%s IN TXT \"name %d of the bench zone\"\n", h, h, h, i)
			records += 2
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return records, f.Close()
}

// signZone signs path with a new ECDSA P-256 KSK and ZSK (ldns-keygen,
// ldns-signzone; NSEC, or NSEC3 with extra's -n -t -s) and returns the
// signed file and its record count.
func signZone(ctx context.Context, dir, path string, extra ...string) (string, int, error) {
	keygen, err := exec.LookPath("ldns-keygen")
	if err != nil {
		return "", 0, fmt.Errorf("ldns-keygen not found (Debian package ldnsutils): %w", err)
	}
	var keys []string
	for _, ksk := range []bool{true, false} {
		args := []string{"-a", "ECDSAP256SHA256"}
		if ksk {
			args = append(args, "-k")
		}
		cmd := exec.CommandContext(ctx, keygen, append(args, origin)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return "", 0, fmt.Errorf("ldns-keygen: %w", err)
		}
		keys = append(keys, filepath.Join(dir, strings.TrimSpace(string(out))))
	}
	// Expires in 2037: far enough for any benchmark, still in 32 bits.
	cmd := exec.CommandContext(ctx, "ldns-signzone", append(append([]string{"-e", "20370101000000", "-f", path + ".signed"}, extra...), path, keys[1], keys[0])...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("ldns-signzone: %v\n%s", err, out)
	}
	n, err := countRecords(path + ".signed")
	return path + ".signed", n, err
}

func countRecords(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zp := dns.NewZoneParser(bufio.NewReaderSize(f, 1<<20), origin, path)
	n := 0
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
		n++
	}
	return n, zp.Err()
}

// zoneIndex holds the records of the names the checks ask about.
type zoneIndex struct {
	names map[string]bool     // every owner name (lowercase) seen, of those kept
	rrs   map[string][]dns.RR // by key(name, type)
	sigs  map[string][]dns.RR // RRSIGs by key(name, covered type)
}

func key(name string, t uint16) string { return strings.ToLower(name) + "/" + dns.TypeToString[t] }

// indexZone reads the zone file and keeps the records of the names qs
// ask about (the large zone is not held whole).
func indexZone(path string, qs []question) (*zoneIndex, error) {
	want := map[string]bool{}
	for _, q := range qs {
		want[strings.ToLower(q.name)] = true
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ix := &zoneIndex{names: map[string]bool{}, rrs: map[string][]dns.RR{}, sigs: map[string][]dns.RR{}}
	zp := dns.NewZoneParser(bufio.NewReaderSize(f, 1<<20), origin, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		if !want[name] {
			continue
		}
		ix.names[name] = true
		if sig, ok := rr.(*dns.RRSIG); ok {
			ix.sigs[key(name, sig.TypeCovered)] = append(ix.sigs[key(name, sig.TypeCovered)], rr)
			continue
		}
		ix.rrs[key(name, rr.Header().Rrtype)] = append(ix.rrs[key(name, rr.Header().Rrtype)], rr)
	}
	return ix, zp.Err()
}

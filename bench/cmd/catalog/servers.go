package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

func member(i int) string { return fmt.Sprintf("member%d.catalog.test.", i) }

// primary is the named serving the catalog and its members, for the whole
// run.
type primary struct {
	proc *lab.Proc
	port int
}

func (p *primary) Stop() { p.proc.Stop() }

// startPrimary writes the member zones and the catalog (member ids m<i>,
// version "2") and runs named on them: no NOTIFY (each consumer starts
// from nothing and asks), no recursion, queries only to 127.0.0.1.
// transfers-out and tcp-clients are raised from BIND's 10 and 150 so the
// primary's limits do not decide the race; both consumers get the same.
func startPrimary(ctx context.Context, o options, dir string) (*primary, error) {
	zdir := filepath.Join(dir, "zones")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		return nil, err
	}
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	cat, err := os.Create(filepath.Join(zdir, "catalog.zone"))
	if err != nil {
		return nil, err
	}
	cw := bufio.NewWriter(cat)
	fmt.Fprintf(cw, "$ORIGIN %s\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"2\"\n", catalogName)
	var conf strings.Builder
	fmt.Fprintf(&conf, `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	notify no;
	recursion no;
	dnssec-validation no;
	check-integrity no;
	check-names primary ignore;
	transfers-out 100;
	tcp-clients 1000;
	rate-limit { responses-per-second 0; };
};
controls { };
server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
zone "%[3]s" { type primary; file "%[4]s"; allow-transfer { 127.0.0.1; }; };
`, dir, port, catalogName, filepath.Join(zdir, "catalog.zone"))
	for i := range o.members {
		path := filepath.Join(zdir, fmt.Sprintf("member%d.zone", i))
		if _, err := lab.WriteZone(path, member(i), o.names); err != nil {
			return nil, err
		}
		fmt.Fprintf(cw, "m%d.zones PTR %s\n", i, member(i))
		fmt.Fprintf(&conf, "zone %q { type primary; file %q; allow-transfer { 127.0.0.1; }; };\n", member(i), path)
	}
	if err := cw.Flush(); err != nil {
		return nil, err
	}
	if err := cat.Close(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("named")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("named", dir, nil, lab.Pinned(o.primaryCPU, []string{bin, "-g", "-4", "-c", path}))
	if err != nil {
		return nil, err
	}
	p.Port = port
	pr := &primary{proc: p, port: port}
	if err := p.WaitReady(ctx, catalogName, 2*time.Minute); err != nil {
		pr.Stop()
		return nil, err
	}
	if err := waitAll(ctx, p, o.members, 5*time.Minute); err != nil {
		pr.Stop()
		return nil, fmt.Errorf("named: %w", err)
	}
	return pr, nil
}

// startXdpns runs xdpns consuming named's catalog, with a fresh state
// directory (members are transferred, not read from disk).
func startXdpns(o options, pr *primary, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	xfr := fmt.Sprintf("xfr:\n  state-dir: %s\n", filepath.Join(dir, "state"))
	if o.noState {
		// Explicitly empty: without the key xdpns would use its default,
		// /var/lib/xdpns/zones.
		xfr = "xfr:\n  state-dir: \"\"\n"
	}
	if o.maxTransfers > 0 {
		xfr += fmt.Sprintf("  max-transfers: %d\n", o.maxTransfers)
	}
	conf := fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
log:
  level: warn
%szones:
  - name: %s
    catalog: consume
    primaries: ["127.0.0.1:%d"]
`, port, xfr, catalogName, pr.port)
	path := filepath.Join(dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{o.xdpnsBin, "serve", "-c", path}
	if o.profile != "" {
		args = append(args, "-cpuprofile", filepath.Join(o.profile, "xdpns.cpu"), "-memprofile", filepath.Join(o.profile, "xdpns.heap"))
	}
	p, err := lab.Launch("xdpns", dir, nil, lab.Pinned(o.cpu, args))
	if p != nil {
		p.Port = port
	}
	return p, err
}

// startKnot runs knotd interpreting named's catalog. Members keep their
// contents in the journal (journal-content: all, no zone files written):
// like xdpns's state directory, what a restart serves from.
func startKnot(o options, pr *primary, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: 127.0.0.1@%[2]d
control:
    listen: "%[1]s/knot.sock"
database:
    storage: "%[1]s"
log:
  - target: stderr
    any: warning
remote:
  - id: named
    address: 127.0.0.1@%[3]d
template:
  - id: default
    storage: "%[1]s"
    master: named
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
    semantic-checks: off
  - id: member
    storage: "%[1]s"
    master: named
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
    semantic-checks: off
zone:
  - domain: %[4]s
    catalog-role: interpret
    catalog-template: member
`, dir, port, pr.port, catalogName)
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("knot", dir, nil, lab.Pinned(o.cpu, []string{bin, "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

// waitAll returns once every member's SOA has been answered
// authoritatively with NOERROR, each asked until it is (workers ask
// different members at once, so the wait measures the server, not one
// client's round trips).
func waitAll(ctx context.Context, p *lab.Proc, members int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	const workers = 8
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
			for {
				i := int(next.Add(1) - 1)
				if i >= members {
					return
				}
				q := new(dns.Msg).SetQuestion(member(i), dns.TypeSOA)
				for {
					if err := p.Exited(); err != nil {
						errs <- err
						return
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("%s: member %s not served after %v", p.Name, member(i), timeout)
						return
					}
					r, _, err := c.Exchange(q, p.Addr())
					if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) == 1 {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

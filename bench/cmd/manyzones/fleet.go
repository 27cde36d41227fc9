package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// fleet is the set of zone files every server loads.
type fleet struct {
	dir          string
	zones, names int
	records      int
	primary      *lab.Proc // xdpns-state's primary while it prepares
}

func (f *fleet) origin(i int) string { return fmt.Sprintf("zone%d.fleet.test.", i) }
func (f *fleet) file(i int) string {
	return filepath.Join(f.dir, fmt.Sprintf("zone%d.fleet.test.zone", i))
}

func (f *fleet) write() error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	f.records = 0
	for i := range f.zones {
		n, err := lab.WriteZone(f.file(i), f.origin(i), f.names)
		if err != nil {
			return err
		}
		f.records += n
	}
	return nil
}

// waitAll returns once every zone's SOA has been answered authoritatively
// with NOERROR, each asked until it is (workers ask different zones at
// once, so the wait measures the server, not one client's round trips).
func (f *fleet) waitAll(ctx context.Context, p *lab.Proc, timeout time.Duration) error {
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
				if i >= f.zones {
					return
				}
				q := new(dns.Msg).SetQuestion(f.origin(i), dns.TypeSOA)
				for {
					if err := p.Exited(); err != nil {
						errs <- err
						return
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("%s: zone %s not served after %v", p.Name, f.origin(i), timeout)
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
	return <-errs // nil when every worker finished
}

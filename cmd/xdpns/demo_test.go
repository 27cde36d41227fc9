package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
)

func TestDemo(t *testing.T) {
	code, stdout, stderr := runCmd(t, "demo")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"serving example.com., example.net. on 127.0.0.1:",
		"ok  www.example.com. A ",
		"host.example.com. A 203.0.113.20",
		"anything.apps.example.com. A 203.0.113.30",
		"NXDOMAIN",
		"REFUSED",
		"authority: sub.example.com. NS ns1.sub.example.com.",
		"ok: all 12 answers as expected",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("a row failed:\n%s", stdout)
	}
}

// TestDemoMismatch proves the demo notices a wrong answer.
func TestDemoMismatch(t *testing.T) {
	zs, err := demoLoad()
	if err != nil {
		t.Fatal(err)
	}
	r := responder.New(responder.Config{})
	r.SetZones(zs)
	srv, err := demoStart(r, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	qs := []demoQuery{
		{name: "example.com.", qtype: dns.TypeA, aa: true, answer: []string{"example.com. A 192.0.2.1"}},
		{name: "example.net.", qtype: dns.TypeA, aa: true, answer: []string{"example.net. A 198.51.100.80"}},
	}
	var out strings.Builder
	if n := demoAsk(context.Background(), &out, srv.Addrs()[0], qs); n != 1 {
		t.Errorf("failed = %d, want 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "want: rcode NOERROR, aa=true, answer example.com. A 192.0.2.1") {
		t.Errorf("no FAIL row with the expectation:\n%s", out.String())
	}
}

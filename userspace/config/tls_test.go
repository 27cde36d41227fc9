package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/xot"
)

// tlsFiles writes a CA and a certificate into dir as ca.pem, srv.pem and
// srv.key (relative paths in the configuration resolve there).
func tlsFiles(t *testing.T, dir string) testenv.Issued {
	t.Helper()
	ca := testenv.NewCA(t, "config test CA")
	srv := ca.Issue("srv.test", "127.0.0.1")
	for from, to := range map[string]string{ca.File: "ca.pem", srv.CertFile: "srv.pem", srv.KeyFile: "srv.key"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

func TestParseTLS(t *testing.T) {
	dir := t.TempDir()
	srv := tlsFiles(t, dir)
	pin := xot.PinOf(srv.Cert)
	text := fmt.Sprintf(`tls:
  - name: to-primary
    ca-file: ca.pem
    hostname: primary.example
    pin-sha256: [%q]
    cert-file: srv.pem
    key-file: srv.key
  - name: serve
    cert-file: srv.pem
    key-file: srv.key
    ca-file: ca.pem
server:
  listen: ["127.0.0.1:53"]
  listen-tls: ["127.0.0.1:853", "[::1]:853"]
  tls: serve
zones:
  - name: example.com
    primaries:
      - {address: 192.0.2.1, tls: to-primary}
      - {address: "192.0.2.2:8853", tls: to-primary}
      - "192.0.2.3:53"
`, pin)
	cfg, err := Parse([]byte(text), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.TLS("to-primary")
	if b == nil || b.CAFile != filepath.Join(dir, "ca.pem") || b.Hostname != "primary.example" ||
		len(b.Pins) != 1 || b.Pins[0] != pin || b.Options.Cert == nil || b.Options.Roots == nil || b.Digest == "" {
		t.Errorf("tls block %+v", b)
	}
	want := []Primary{
		{Addr: netip.MustParseAddrPort("192.0.2.1:853"), TLS: "to-primary"},
		{Addr: netip.MustParseAddrPort("192.0.2.2:8853"), TLS: "to-primary"},
		{Addr: netip.MustParseAddrPort("192.0.2.3:53")},
	}
	if got := cfg.Zones[0].Primaries; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("primaries %v, want %v", got, want)
	}
	if s := cfg.Server; s.TLS != "serve" || len(s.ListenTLS) != 2 || s.ListenTLS[0].Port() != 853 {
		t.Errorf("server %+v", s)
	}
	// The digest follows the files' content.
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), append(mustRead(t, filepath.Join(dir, "ca.pem")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2, err := Parse([]byte(text), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.TLS("to-primary").Digest == b.Digest {
		t.Error("digest unchanged after ca.pem changed")
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseTLSErrors(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"blocks", `tls:
  - name: a
    cert-file: srv.pem
  - name: "b c"
  - {name: d, ca-file: junk.pem, pin-sha256: [abc], hostname: "a b"}
  - {name: e, cert-file: srv.pem, key-file: missing.key}
  - {ca-file: ca.pem}
  - {name: f, ca-file: ca.pem, bogus: 1}
  - {name: f}
`, []string{
			`c.yaml:3: tls[0]: cert-file and key-file go together`,
			`c.yaml:4: tls[1].name: "b c" is not a valid name`,
			`c.yaml:5: tls[2].pin-sha256[0]: pin "abc": want the base64 SHA-256`,
			`c.yaml:5: tls[2].hostname: "a b" is not a host name or IP address`,
			`c.yaml:5: tls[2].ca-file: ` + filepath.Join(dir, "junk.pem") + `: no PEM certificate in it`,
			`c.yaml:6: tls[3].cert-file: certificate`,
			`c.yaml:7: tls[4]: name is required`,
			`c.yaml:8: unknown key "bogus" in tls[5]; valid keys: name, cert-file, key-file, ca-file, hostname, pin-sha256`,
			`c.yaml:9: tls[6].name: duplicate tls block f (first at line 8)`,
		}},
		{"references", `tls:
  - {name: client, ca-file: ca.pem, hostname: p.example}
server:
  listen: ["127.0.0.1:853"]
  listen-tls: ["0.0.0.0:853"]
  tls: client
zones:
  - name: a.
    primaries: [{address: 127.0.0.1, tls: nope}, {address: 127.0.0.2, tls: client}, {address: 127.0.0.3}]
`, []string{
			`c.yaml:5: server.listen-tls: 0.0.0.0:853 takes TCP port 853 of server.listen 127.0.0.1:853`,
			`c.yaml:6: server.tls: tls block client (line 2) has no cert-file and key-file, which serving TLS needs`,
			`c.yaml:9: zones[0].primaries[2].address: bad address "127.0.0.3": want IP:port`,
			`c.yaml:9: zones[0].primaries[0].tls: tls block nope is not defined in tls`,
		}},
		{"listen-tls without tls", "server:\n  listen-tls: [\"127.0.0.1:853\"]\n", []string{
			`c.yaml:2: server.listen-tls: needs server.tls`}},
		{"tls without listen-tls", "tls: [{name: s, cert-file: srv.pem, key-file: srv.key}]\nserver:\n  tls: s\n", []string{
			`c.yaml:3: server.tls: no server.listen-tls to serve it on`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), filepath.Join(dir, "c.yaml"))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d:\n got  %s\n want %s", i, lines[i], w)
				}
			}
		})
	}
}

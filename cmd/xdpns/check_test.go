package main

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		config string
		code   int
		stdout string   // exact
		stderr []string // each line of stderr, in order (substring match)
	}{
		{
			name:   "sample config",
			config: "testdata/xdpns.yaml",
			code:   exitOK,
			stdout: "ok: 2 zones, 28 records\n",
		},
		{
			name:   "secondary sample",
			config: "testdata/secondary.yaml",
			code:   exitOK,
			stdout: "ok: 1 zone, 22 records; 1 secondary zone (transferred from their primaries when served)\n",
		},
		{
			name:   "xdp sample",
			config: "testdata/xdp.yaml",
			code:   exitOK,
			stdout: "ok: 1 zone, 22 records\nxdp: eth0, eth1 (native): UDP port 53 at 198.51.100.53, 2001:db8::53; pinned under /sys/fs/bpf/xdpns; 127.0.0.1:5353 answered from userspace only\n",
		},
		{
			name:   "warning",
			config: "testdata/warn.yaml",
			code:   exitOK,
			stdout: "ok: 1 zone, 3 records\n",
			stderr: []string{"warning: testdata/zones/glue.example.zone:7: record outside the zone (ignored glue): ns1.other.example."},
		},
		{
			name:   "bad config",
			config: "testdata/bad-config.yaml",
			code:   exitFail,
			stderr: []string{
				`testdata/bad-config.yaml:3: server.listen[1]: bad address "localhost:53"`,
				`testdata/bad-config.yaml:4: server.udp-payload: must be between 512 and 4096, got 9000`,
				`testdata/bad-config.yaml:5: server.tcp-idle-timeout: duration "10" needs a unit`,
				`testdata/bad-config.yaml:7: log.level: must be one of debug|info|warn|error, got "loud"`,
				`testdata/bad-config.yaml:11: zones[1].name: duplicate zone example.com. (first at line 9)`,
				`testdata/bad-config.yaml:13: zones[2]: needs file (a zone served from a file) or primaries (a secondary zone)`,
				`testdata/bad-config.yaml:14: unknown key "fiel" in zones[2] (did you mean "file"?); valid keys: name, file, primaries, allow-notify, axfr-only, timers, allow-transfer, notify, notify-key`,
			},
		},
		{
			name:   "bad zones",
			config: "testdata/bad-zones.yaml",
			code:   exitFail,
			stderr: []string{
				`testdata/zones/syntax.example.zone:7:24: bad A A: "203.0.113.300"`,
				`testdata/zones/cname.example.zone:8: CNAME beside other data`,
				`testdata/bad-zones.yaml:9: zone missing.example.: open testdata/zones/missing.example.zone: no such file or directory`,
				`failed: 3 of 4 zones did not load`,
			},
		},
		{
			name:   "missing config",
			config: "testdata/nonexistent.yaml",
			code:   exitFail,
			stderr: []string{"read config: open testdata/nonexistent.yaml: no such file or directory"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "check", "-c", tc.config)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if stderr == "" {
				lines = nil
			}
			if len(lines) != len(tc.stderr) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(tc.stderr), stderr)
			}
			for i, want := range tc.stderr {
				if !strings.Contains(lines[i], want) {
					t.Errorf("stderr line %d:\n got  %s\n want %s", i+1, lines[i], want)
				}
			}
		})
	}
}

func TestCheckControlGroup(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.1"))
	cfg := writeFile(t, dir, "x.yaml", "zones: [{name: a.example., file: a.zone}]\ncontrol:\n  group: no-such-group-xdpns\n")
	code, stdout, stderr := runCmd(t, "check", "-c", cfg)
	if code != exitOK || stdout != "ok: 1 zone, 4 records\n" ||
		!strings.Contains(stderr, "warning: "+cfg+":3: control.group: group \"no-such-group-xdpns\"") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

func TestCheckInclude(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "inc.example.zone", "$ORIGIN inc.example.\n$TTL 300\n@ SOA ns1 hm 1 2 3 4 5\n$INCLUDE more.zone\n")
	writeFile(t, dir, "more.zone", "@ NS ns1\nns1 A 203.0.113.1\n")
	zones := "zones:\n  - name: inc.example.\n    file: inc.example.zone\n"
	off := writeFile(t, dir, "off.yaml", zones)
	on := writeFile(t, dir, "on.yaml", "server:\n  allow-include: true\n"+zones)

	code, _, stderr := runCmd(t, "check", "-c", off)
	if want := dir + "/inc.example.zone:4:"; code != exitFail || !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, "allow-include is off") {
		t.Errorf("include off: exit %d, stderr:\n%s\nwant %q and a hint about allow-include", code, stderr, want)
	}
	code, stdout, stderr := runCmd(t, "check", "-c", on)
	if code != exitOK || stdout != "ok: 1 zone, 3 records\n" {
		t.Errorf("include on: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

package xfr

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	p := []Primary{{Addr: netip.MustParseAddrPort("127.0.0.1:53")}}
	key := func(alg, secret string) []Primary {
		return []Primary{{Addr: p[0].Addr, Key: &Key{Name: "k.", Algorithm: alg, Secret: secret}}}
	}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no primaries", Config{Zones: []Zone{{Name: "a.test"}}}, "no primaries"},
		{"twice", Config{Zones: []Zone{{Name: "a.test", Primaries: p}, {Name: "A.test.", Primaries: p}}}, "listed twice"},
		{"bad name", Config{Zones: []Zone{{Name: "a..test", Primaries: p}}}, "not a domain name"},
		{"no port", Config{Zones: []Zone{{Name: "a.test", Primaries: []Primary{{Addr: netip.MustParseAddrPort("127.0.0.1:0")}}}}}, "want IP:port"},
		{"algorithm", Config{Zones: []Zone{{Name: "a.test", Primaries: key("hmac-sha3", "c2VjcmV0")}}}, "unknown algorithm"},
		{"secret", Config{Zones: []Zone{{Name: "a.test", Primaries: key("hmac-sha256", "not base64!")}}}, "not base64"},
		{"clamps", Config{Timers: Timers{RefreshMin: time.Hour, RefreshMax: time.Minute}}, "refresh clamps"},
		{"zone clamps", Config{Zones: []Zone{{Name: "a.test", Primaries: p, Timers: Timers{RetryMin: time.Hour, RetryMax: time.Second}}}}, "retry clamps"},
		{"jitter", Config{Timers: Timers{Jitter: 0.7}}, "jitter"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrConfig saying %q", tc.name, err, tc.want)
		}
	}
}

func TestConfigNormalises(t *testing.T) {
	m, err := New(Config{
		Timers: Timers{RefreshMin: 5 * time.Second},
		Zones: []Zone{{Name: "Example.TEST", Timers: Timers{RetryMax: time.Minute}, Primaries: []Primary{{
			Addr: netip.MustParseAddrPort("127.0.0.1:53"),
			Key:  &Key{Name: "My-Key", Algorithm: "HMAC-MD5.SIG-ALG.REG.INT.", Secret: "c2VjcmV0"},
		}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	zs := m.zones["example.test."]
	if zs == nil {
		t.Fatalf("zones %v", m.zones)
	}
	k := zs.cfg.Primaries[0].Key
	if k.Name != "my-key." || k.Algorithm != hmacMD5 {
		t.Errorf("key %+v", k)
	}
	tm := zs.cfg.Timers
	if tm.RefreshMin != 5*time.Second || tm.RetryMax != time.Minute || tm.RefreshMax != DefaultTimers.RefreshMax || tm.Jitter != DefaultTimers.Jitter {
		t.Errorf("timers %+v", tm)
	}
	if err := m.Refresh("nope."); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("Refresh of an unknown zone: %v", err)
	}
}

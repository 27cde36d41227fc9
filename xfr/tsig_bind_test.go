package xfr

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv/peer"
)

func secret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Issue 3, test 8: TSIG. Each algorithm transfers with the right key (and
// signed NOTIFYs are accepted); a wrong secret, an unknown key or no key
// gets no transfer and a log line that says why.
func TestBINDTSIG(t *testing.T) {
	t.Parallel()
	algs := []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1", "hmac-md5"}
	var keys []peer.Key
	var allow strings.Builder
	for _, a := range algs {
		k := peer.Key{Name: "k-" + a + ".", Algorithm: a, Secret: secret(t)}
		keys = append(keys, k)
		fmt.Fprintf(&allow, "key %q; ", k.Name)
	}
	// Enough records for a transfer of several messages: each is signed,
	// each MAC chained to the previous one (RFC 8945 §5.3.1).
	var big strings.Builder
	big.WriteString(zoneText(42, 3600, 600, 86400))
	for i := range 5000 {
		fmt.Fprintf(&big, "bulk%d IN A 198.18.%d.%d\n", i, i/256, i%256)
	}
	nl := notifyListener(t)
	named := peer.StartNamed(t, peer.NamedConfig{
		Zones:      []peer.Zone{{Name: testZone, Text: big.String(), AllowTransfer: allow.String()}},
		Keys:       keys,
		NotifyPort: port(nl),
		NotifyKey:  keys[0].Name,
	})
	key := func(k peer.Key) *Key { return &Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret} }
	// The reference AXFR uses miekg/dns, which no longer does HMAC-MD5.
	pk := &peer.Key{Name: keys[0].Name, Algorithm: dns.HmacSHA256, Secret: keys[0].Secret}
	primary := func(k *Key) Config {
		return Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: named.Addr(), Key: k}}}}}
	}

	t.Run("algorithms", func(t *testing.T) {
		for i, k := range keys {
			t.Run(k.Algorithm, func(t *testing.T) {
				var l = nl
				if i != 0 {
					l = nil // named notifies the first key's listener only
				}
				s := startSecondary(t, primary(key(k)), l)
				s.waitSerial(named.Serial(testZone), 3*time.Second)
				sameZone(t, named.AXFR(testZone, pk), s.served())
				if i != 0 {
					return
				}
				// A signed NOTIFY brings the next change.
				named.Update(testZone, func(m *dns.Msg) {
					m.Insert([]dns.RR{rr(t, "signed.example.test. 300 IN A 198.18.4.1")})
				})
				st := s.waitSerial(named.Serial(testZone), 2*time.Second)
				if st.Counters.Notifies == 0 || st.Counters.NotifyDenied != 0 || st.Counters.Incremental != 1 {
					t.Errorf("counters %+v: want the signed NOTIFY accepted and an IXFR", st.Counters)
				}
				sameZone(t, named.AXFR(testZone, pk), s.served())
			})
		}
	})

	bad := []struct {
		name string
		key  *Key
		want string // in the log and the status
	}{
		{"wrong secret", &Key{Name: keys[0].Name, Algorithm: keys[0].Algorithm, Secret: secret(t)}, "BADSIG"},
		{"unknown key", &Key{Name: "nobody.", Algorithm: "hmac-sha256", Secret: secret(t)}, "BADKEY"},
		{"wrong algorithm", &Key{Name: keys[0].Name, Algorithm: "hmac-sha512", Secret: keys[0].Secret}, "BADKEY"},
		{"no key", nil, "REFUSED"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := startSecondary(t, primary(tc.key), nil)
			st := s.waitFor("a failed check", 3*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > 0 })
			if st.State != StateLoading || s.served() != nil {
				t.Errorf("zone served after a bad transfer: %+v", st)
			}
			if !strings.Contains(st.LastError, tc.want) {
				t.Errorf("last error %q, want it to say %s", st.LastError, tc.want)
			}
			if !strings.Contains(s.log.String(), tc.want) {
				t.Errorf("log does not say %s:\n%s", tc.want, s.log.String())
			}
			t.Logf("logged: %s", st.LastError)
		})
	}
}

package cookie

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The SipHash paper's vector: key 00..0f, message 00..0e.
func TestSipHash(t *testing.T) {
	var k [16]byte
	m := make([]byte, 15)
	for i := range k {
		k[i] = byte(i)
	}
	for i := range m {
		m[i] = byte(i)
	}
	if got := sipHash24(&k, m); got != 0xa129ca6149be45e5 {
		t.Errorf("siphash %x", got)
	}
	if got := sipHash24(&k, nil); got != 0x726fdb47dd0e0e31 {
		t.Errorf("siphash of nothing %x", got)
	}
}

// RFC 9018 Appendix A, every exchange, through Answer.
func TestRFC9018Vectors(t *testing.T) {
	const s1 = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	for _, c := range []struct {
		name, secret, previous, ip, query string
		now                               int64
		valid                             bool
		reply                             string
	}{
		{"A.1 new", s1, "", "198.51.100.100", "2464c4abcf10c957", 1559731985, false,
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
		{"A.2 renewed after 40 minutes", s1, "", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559734385, true,
			"2464c4abcf10c957010000005cf7a871d4a564a1442aca77"},
		// Stamped 1h52m before: too old, renewed (its hash, over the
		// reserved bytes the client set, is checked below).
		{"A.3 reserved bytes set by the client", s1, "", "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700, false,
			"fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"},
		{"A.4 previous secret, IPv6", "445536bcd2513298075a5d379663c962", "dd3bdf9344b678b185a6f5cb60fca715",
			"2001:db8:220:1:59de:d0f4:8769:82b8", "22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, true,
			"22681ab97d52c298010000005cf7c609a6bb79d16625507a"},
		{"A.4 without the previous secret: invalid", "445536bcd2513298075a5d379663c962", "",
			"2001:db8:220:1:59de:d0f4:8769:82b8", "22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, false,
			"22681ab97d52c298010000005cf7c609a6bb79d16625507a"},
		{"fresh cookie echoed", s1, "", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 + 600, true,
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
		{"another address: invalid", s1, "", "198.51.100.101", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985, false, ""},
		{"over an hour old: invalid", s1, "", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 + 3601, false, ""},
		{"from the future: invalid", s1, "", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559731985 - 301, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var prev []byte
			if c.previous != "" {
				prev = unhex(t, c.previous)
			}
			j, err := New(unhex(t, c.secret), prev)
			if err != nil {
				t.Fatal(err)
			}
			j.Now = func() time.Time { return time.Unix(c.now, 0) }
			got, valid, err := j.Answer(nil, unhex(t, c.query), netip.MustParseAddr(c.ip))
			if err != nil {
				t.Fatal(err)
			}
			if valid != c.valid {
				t.Errorf("valid %v, want %v", valid, c.valid)
			}
			if c.reply != "" && hex.EncodeToString(got) != c.reply {
				t.Errorf("reply %x, want %s", got, c.reply)
			}
			if len(got) != ClientLen+ServerLen {
				t.Errorf("reply of %d bytes", len(got))
			}
		})
	}
}

func TestHashOverReceivedBytes(t *testing.T) {
	var k [SecretLen]byte
	copy(k[:], unhex(t, "e5e973e5a6b2a43f48e7dc849e37bfcf"))
	q := unhex(t, "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5")
	if h := hash(&k, q[:8], q[8:16], netip.MustParseAddr("203.0.113.203")); h != 0xf5eb79667b2214a3 {
		t.Errorf("hash %x", h)
	}
}

func TestMalformed(t *testing.T) {
	j, _ := New(nil, nil)
	for _, n := range []int{0, 7, 9, 15, 41} {
		if _, _, err := j.Answer(nil, make([]byte, n), netip.MustParseAddr("198.18.0.1")); !errors.Is(err, ErrMalformed) {
			t.Errorf("cookie of %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{8, 16, 24, 40} {
		if _, _, err := j.Answer(nil, make([]byte, n), netip.MustParseAddr("198.18.0.1")); err != nil {
			t.Errorf("cookie of %d bytes: %v", n, err)
		}
	}
}

// Rotate: cookies made with the old secret stay valid, new ones use the
// new secret.
func TestRotate(t *testing.T) {
	j, _ := New(nil, nil)
	ip := netip.MustParseAddr("2001:2::2")
	c, _, _ := j.Answer(nil, unhex(t, "0102030405060708"), ip)
	if err := j.Rotate(nil); err != nil {
		t.Fatal(err)
	}
	c2, valid, _ := j.Answer(nil, c, ip)
	if !valid || string(c2) == string(c) {
		t.Errorf("after rotation: valid %v, renewed %v", valid, string(c2) != string(c))
	}
	j.Rotate(nil)
	if _, valid, _ := j.Answer(nil, c, ip); valid {
		t.Error("a cookie two secrets old is valid")
	}
}

package xfr

import "github.com/miekg/dns"

// Canonical checks k and returns it with its name and algorithm in wire
// form (e.g. "hmac-sha256.", "hmac-md5.sig-alg.reg.int."), the form every
// signature carries. Exported for packages that sign with the same keys
// (userspace/xfrout).
func (k Key) Canonical() (Key, error) {
	c, err := k.normalise()
	if err != nil {
		return Key{}, err
	}
	return *c, nil
}

// Provider returns a dns.TsigProvider for k that computes every algorithm
// Canonical accepts, HMAC-MD5 included (miekg/dns no longer does). It
// signs and verifies only under k's canonical name and algorithm.
func (k Key) Provider() (dns.TsigProvider, error) {
	c, err := k.normalise()
	if err != nil {
		return nil, err
	}
	return newKeyProvider(c)
}

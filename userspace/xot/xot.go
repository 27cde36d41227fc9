// Package xot builds the crypto/tls configurations of zone transfers over
// TLS (XoT, RFC 9103): as a client of a primary (verified against a CA
// file, the system roots, or a pinned public key) and as a server to
// downstream secondaries (optionally requiring client certificates).
//
// Everything that can fail (reading and parsing files) happens in Load*,
// so the configuration decoder reports it with the file and line; building
// a tls.Config from loaded Options cannot fail.
package xot

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// ALPN is the protocol XoT negotiates: RFC 9103 §7.1 reuses DoT's.
const ALPN = "dot"

// DefaultPort is the DoT/XoT port (RFC 7858 §3.1).
const DefaultPort = 853

// Pin is the SHA-256 of a certificate's SubjectPublicKeyInfo (RFC 7469
// §2.4), as `openssl x509 -pubkey | openssl pkey -pubin -outform der |
// openssl dgst -sha256 -binary | base64` prints it.
type Pin [sha256.Size]byte

func (p Pin) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// PinOf returns the pin of a certificate.
func PinOf(c *x509.Certificate) Pin { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

// ParsePin decodes a base64 pin.
func ParsePin(s string) (Pin, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != sha256.Size {
		return Pin{}, fmt.Errorf("pin %q: want the base64 SHA-256 of a SubjectPublicKeyInfo (44 characters)", s)
	}
	return Pin(raw), nil
}

// Options are the loaded parts of a tls block.
type Options struct {
	// Cert is our certificate: the server's, or a client certificate
	// presented to primaries. Nil: none (a server needs one).
	Cert *tls.Certificate
	// Roots verify the peer's chain: the primary's (nil: the system
	// roots, unless Pins alone are given), or, on a server, the client
	// certificates it then requires.
	Roots *x509.CertPool
	// Hostname is the name the primary's certificate must hold; empty:
	// the primary's IP address (an IP SAN).
	Hostname string
	// Pins: the peer's leaf certificate must carry one of these public
	// keys. With no Roots, the pin alone authenticates the peer (no chain
	// or name checks, as with DANE-EE); with Roots, both must pass. On a
	// server, pins require a client certificate.
	Pins []Pin
}

// LoadCert reads a PEM certificate chain and its private key.
func LoadCert(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}

// LoadCA reads a PEM file of CA certificates.
func LoadCA(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ErrPin is a peer certificate whose public key matches no pin.
var ErrPin = errors.New("public key matches no pinned key")

// pinError names the key the peer presented.
type pinError struct{ got Pin }

func (e pinError) Error() string {
	return fmt.Sprintf("certificate's public key (SPKI sha256 %s) matches no pinned key", e.got)
}

func (e pinError) Unwrap() error { return ErrPin }

// checkPins verifies the leaf of a handshake against pins.
func checkPins(cs tls.ConnectionState, pins []Pin) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	got := PinOf(cs.PeerCertificates[0])
	for _, p := range pins {
		if p == got {
			return nil
		}
	}
	return pinError{got}
}

// Client returns the configuration for connecting to the primary at addr.
func Client(o Options, addr netip.Addr) *tls.Config {
	c := &tls.Config{
		// RFC 9103 §9: XoT uses TLS 1.3 or later.
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
		RootCAs:    o.Roots,
		ServerName: o.Hostname,
	}
	if c.ServerName == "" {
		c.ServerName = addr.Unmap().String()
	}
	if o.Cert != nil {
		cert := *o.Cert
		c.Certificates = []tls.Certificate{cert}
	}
	pinOnly := o.Roots == nil && len(o.Pins) > 0
	// Only with a pin alone is the chain left unchecked: the pin is then
	// the authentication, checked in VerifyConnection below.
	c.InsecureSkipVerify = pinOnly
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(o.Pins) > 0 {
			if err := checkPins(cs, o.Pins); err != nil {
				return err
			}
		}
		// RFC 9103 §7.1: a primary that does not speak "dot" is not
		// an XoT server (Go's client carries on without ALPN).
		if cs.NegotiatedProtocol != ALPN {
			return alpnError(fmt.Sprintf("primary did not negotiate ALPN %q (RFC 9103 §7.1: not an XoT server?)", ALPN))
		}
		return nil
	}
	return c
}

// Server returns the configuration for serving XoT; o.Cert must be set.
// With Roots or Pins, clients must present a certificate that passes them.
func Server(o Options) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
	}
	if o.Cert != nil {
		c.Certificates = []tls.Certificate{*o.Cert}
	}
	switch {
	case o.Roots != nil:
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = o.Roots
	case len(o.Pins) > 0:
		c.ClientAuth = tls.RequireAnyClientCert
	}
	if len(o.Pins) > 0 {
		c.VerifyConnection = func(cs tls.ConnectionState) error { return checkPins(cs, o.Pins) }
	}
	return c
}

// ErrClosed is a peer that closed the connection before its first answer,
// just after the TLS handshake: with TLS 1.3 that is how a server that
// wants a client certificate (or does not accept ours) is seen when it
// sends no alert, as BIND 9.18 does.
var ErrClosed = errors.New("the primary closed the connection after the TLS handshake, before answering (does it require a client certificate, or refuse ours?)")

// Refusal says why a TLS connection to a peer failed, when it failed on
// authentication (its certificate refused by us, or ours by it), as a
// short reason for a log line; ok is false for any other error (a
// timeout, a refused connection).
func Refusal(err error) (reason string, ok bool) {
	var cv *tls.CertificateVerificationError
	var pe pinError
	// crypto/tls reports an alert from the peer as a net.OpError with
	// Op "remote error" (tls.AlertError is QUIC's).
	var op *net.OpError
	switch {
	case errors.As(err, &cv):
		return "certificate refused: " + cv.Err.Error(), true
	case errors.As(err, &pe):
		return "certificate refused: " + pe.Error(), true
	case errors.As(err, &op) && op.Op == "remote error":
		return "the peer ended the TLS handshake: " + op.Err.Error() + " (does it accept our client certificate?)", true
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return "not a TLS server (wrong port?)", true
	}
	var alpn alpnError
	if errors.As(err, &alpn) {
		return string(alpn), true
	}
	if errors.Is(err, ErrClosed) {
		return ErrClosed.Error(), true
	}
	return "", false
}

// alpnError is a primary that did not negotiate ALPN "dot".
type alpnError string

func (e alpnError) Error() string { return string(e) }

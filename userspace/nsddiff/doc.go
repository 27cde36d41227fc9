// Package nsddiff holds the differential test of the xdpns responder against
// NSD, the reference authoritative server: both serve the same zones on
// loopback, receive the same queries, and their answers are compared by
// rcode, header flags and sections as sets of records. The deliberate
// differences are normalised in the test and listed in docs/differences.md.
//
// The package has no code of its own; see nsddiff_test.go.
package nsddiff

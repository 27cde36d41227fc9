// Package xfr keeps secondary zones in step with their primaries.
//
// A Manager runs one small state machine per zone. The SOA timers (RFC 1035
// §3.3.13: refresh, retry, expire, clamped by configuration and jittered) and
// NOTIFY (RFC 1996) decide when to ask a primary for its SOA; a newer serial
// (RFC 1982 arithmetic, CompareSerial) starts an IXFR (RFC 1995) over TCP,
// falling back to AXFR (RFC 5936) when the primary answers with a full zone,
// when its journal does not reach our serial, or when the differences do not
// apply cleanly. Every exchange can be signed with TSIG (RFC 8945).
//
// A transfer never touches the served zone: it fills a candidate, which is
// validated (SOA first and last, serial as announced, apex NS, every name in
// the zone, no CNAME beside data) and only then handed to Config.OnZone. Any
// failure keeps the previous zone serving. When expire passes without a
// successful refresh, Config.OnExpire tells the server to answer SERVFAIL.
//
// Zones and their timers are written atomically to Config.StateDir, so a
// restarted daemon serves them at once without waiting for a primary.
//
// The package answers no queries: the server hands it NOTIFY packets
// (Manager.HandleNotify) and serves the zones it publishes.
package xfr

#!/usr/bin/env bash
# Regenerates the signed test zones from signed.zone.in. Fresh keys each run;
# signatures valid 2026-2036 (no server in the test validates them).
#   nsec.test    NSEC, ldns-signzone (Debian ldnsutils)
#   nsec3.test   NSEC3, salt aabbccdd, 1 iteration, ldns-signzone
#   chain.test   NSEC, ldns-signzone, from chain.zone.in (CNAME/DNAME loops
#                and chains)
#   nsec3z.test  NSEC3, no salt, 0 iterations (RFC 9276), ldns-signzone:
#                what XDP composes signed NXDOMAIN for
#   nsec3s.test  NSEC3, 8-byte salt, 0 iterations, ldns-signzone
#   optout.test  NSEC3 opt-out, no salt, 0 iterations (RFC 9276),
#                dnssec-signzone (Debian bind9-utils): unlike ldns-signzone
#                it leaves unsigned delegations out of the NSEC3 chain, so
#                the opt-out proofs of RFC 5155 §7.2.4/§7.2.7 are exercised
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
sign() {
	local origin=$1; shift
	sed "1i \$ORIGIN $origin." "$here/${src:-signed.zone.in}" >"$origin.zone"
	ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$origin")
	zsk=$(ldns-keygen -a ECDSAP256SHA256 "$origin")
	ldns-signzone -i 20260101000000 -e 20360101000000 -o "$origin" \
		-f "$here/$origin.zone.signed" "$@" "$origin.zone" "$ksk" "$zsk"
}
sign nsec.test
sign nsec3.test -n -s aabbccdd -t 1
sign nsec3z.test -n -t 0
sign nsec3s.test -n -s 0123456789abcdef -t 0
src=chain.zone.in sign chain.test

origin=optout.test
sed "1i \$ORIGIN $origin." "$here/signed.zone.in" >"$origin.zone"
dnssec-keygen -q -K "$tmp" -a ECDSAP256SHA256 -f KSK "$origin" >/dev/null
dnssec-keygen -q -K "$tmp" -a ECDSAP256SHA256 "$origin" >/dev/null
dnssec-signzone -q -O full -S -K "$tmp" -3 - -A -H 0 -s 20260101000000 -e 20360101000000 \
	-o "$origin" -f "$here/$origin.zone.signed" "$origin.zone"

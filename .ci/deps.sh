#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmark need,
# and only those that are missing: a second run does nothing and needs no
# network. Works on a fresh Debian 12 as root; otherwise it names the missing
# packages and the command to install them, and exits non-zero.
#
# Reference servers (nsd, knot, bind9) are installed with their services held
# down: the tests start their own instances on free loopback ports and never
# depend on port 53, but a system daemon left running would still be noise.
set -euo pipefail

# package: what needs it
PACKAGES=(
	make           # the Makefile
	nsd            # differential test and benchmark peer
	knot           # benchmark peer (knotd)
	knot-dnsutils  # kdig, kxdpgun
	bind9          # named, test primary for transfer tests
	bind9-dnsutils # dig
	bind9-utils    # dnssec-keygen, dnssec-signzone
	dnsperf        # benchmark load generator
	ldnsutils      # ldns-keygen, ldns-signzone (signed test zones)
	iproute2       # ip netns, veth for the XDP lab
	util-linux     # taskset, nsenter
	clang-16       # BPF C compiler
	llvm-16        # llvm-strip for bpf2go
	libbpf-dev     # bpf_helpers.h
	opendnssec-signer # ods-signerd: a TSIG primary that leaves messages unsigned
	libhsm-bin     # ods-hsmutil: its signing key
	softhsm2       # the key's store
)

# Services these packages would start on port 53.
declare -A SERVICE=([nsd]=nsd [knot]=knot [bind9]=named [opendnssec-signer]=opendnssec-signer)

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"

# Keep maintainer scripts from starting daemons (invoke-rc.d honours
# policy-rc.d under systemd and sysvinit alike). Only ours is removed.
policy=/usr/sbin/policy-rc.d
ours_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# written by xdpns .ci/deps.sh during apt-get install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours_policy=1
fi
cleanup() { if [ -n "$ours_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Units enabled by the packages we just installed would start at the next
# boot: disable them (and stop them, should one have started anyway).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	for p in "${missing[@]}"; do
		s=${SERVICE[$p]:-}
		[ -n "$s" ] || continue
		systemctl disable --now "$s" >/dev/null 2>&1 || true
		echo "deps: disabled $s.service (installed by us; tests run their own instances)"
	done
fi

still=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: done"

#!/bin/sh
# Regenerates the signed copies of the example zones (testdata/dns/signed),
# the way an operator signs offline: BIND's dnssec-signzone, ECDSA P-256
# keys (algorithm 13), signatures valid from 2025 to 2038 (ldns-verify-zone reads times past 2038-01-19 as negative). Not run by make
# test: the keys and the signed files are committed; run it (make
# signed-zones) after changing a zone in testdata/dns, or with NEWKEYS=1 to
# make new keys; give zone names to sign only those again (ECDSA
# signatures differ at each signing).
#
#   example.com           NSEC, with CDS and CDNSKEY (RFC 7344) for its KSK
#   edge.test             NSEC3, opt-out (its delegation big. is insecure;
#                         child.edge.test. is secure: its DS is signed here)
#   child.edge.test       NSEC3, no opt-out, salt
#   2.0.192.in-addr.arpa  NSEC3, no opt-out, no salt
#
# trust-anchors.conf holds the KSKs for delv -a (delv +root=ZONE.).
set -eu
cd "$(dirname "$0")"
src=..
start=20250101000000
end=20380101000000
keys() { # zone
	if [ "${NEWKEYS:-}" = 1 ] || ! ls K"$1".+013+*.key >/dev/null 2>&1; then
		rm -f K"$1".+013+*
		dnssec-keygen -q -a ECDSAP256SHA256 -f KSK "$1" >/dev/null
		dnssec-keygen -q -a ECDSAP256SHA256 "$1" >/dev/null
	fi
}
only=" $* "
cds_zones=" example.com "
# cds ZONE: the CDS and CDNSKEY records of ZONE's KSK, as an operator
# publishes them for the parent to pick up.
cds() {
	k=$(grep -l 'DNSKEY 257' K"$1".+013+*.key)
	dnssec-dsfromkey -C -2 "$k"
	awk '$3 == "DNSKEY" && $4 == 257 { $3 = "CDNSKEY"; print }' "$k"
}
sign() { # zone nsec-args...
	z=$1
	shift
	case "$only" in "  " | *" $z "*) ;; *) return 0 ;; esac
	keys "$z"
	cat "$src/$z.zone" K"$z".+013+*.key >"$z.unsigned"
	case "$cds_zones" in *" $z "*) cds "$z" >>"$z.unsigned" ;; esac
	dnssec-signzone -q -S -K . -d . -g -s "$start" -e "$end" -o "$z" -f "$z.zone" "$@" "$z.unsigned" >/dev/null
	rm -f "$z.unsigned"
}
sign example.com
sign child.edge.test -3 c0ffee
sign edge.test -3 - -A
sign 2.0.192.in-addr.arpa -3 -
{
	echo "trust-anchors {"
	for k in K*.key; do
		# the KSKs: flags 257
		awk '$3 == "DNSKEY" && $4 == 257 { k = ""; for (i = 7; i <= NF; i++) k = k $i; printf "\t%s static-key %s %s %s \"%s\";\n", $1, $4, $5, $6, k }' "$k"
	done
	echo "};"
} >trust-anchors.conf
rm -f dsset-*

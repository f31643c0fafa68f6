// Package dns is shardd's authoritative DNS handler: it answers queries from
// RFC 1035 master files, like an authoritative-only name server.
//
// Zones are parsed with github.com/miekg/dns's ZoneParser (the Go
// ecosystem's standard, used by CoreDNS). At load time every answer a zone
// can give is worked out by a plain resolver (resolve.go: RFC 1034 4.3.2,
// CNAME chains, RFC 4592 wildcards, referrals with glue, RFC 2308 negative
// answers) and packed into wire-format templates. A query is then a header
// check, a map lookup per label of its name and one copy: the hot path
// allocates nothing and runs no resolver logic.
//
// A reply repeats the query's question bytes exactly (0x20 case
// randomisation survives); the template's names point into that question.
// Templates for names that vary (wildcard synthesis, NXDOMAIN, names below
// a delegation) only point at the question name itself, so they fit a
// question of any length.
//
// Pre-signed zones (RFC 4033-4035, 5155; dnssec.go, prove.go): shardd
// signs nothing; it serves the RRSIG, NSEC, NSEC3, DNSKEY, DS, CDS and
// CDNSKEY records a signer wrote, and checks the NSEC or NSEC3 chain at
// load. Each node has a second set of templates for queries with the DO
// bit: every RRset with its RRSIGs (after the section's other records, as
// Knot DNS orders them), and NODATA, NXDOMAIN, wildcard and referral
// answers with their proofs. The one proof that depends on a name no
// template can know (NXDOMAIN and wildcard answers: the NSEC covering the
// name, or the NSEC3 covering the hash of its next closer name) is found
// at query time, allocation-free, by a binary search of the chain sorted
// at load (NSEC3: after a SHA-1 hash on the stack), and its packed records
// are copied into the reply at the template's insertion points. The AD bit
// is never set.
//
// Facing the Internet (both off until the server enables them): response
// rate limiting (rrl.go, Server.EnableRRL) counts UDP answers per source
// prefix, response class and name in one table every shard shares, updated
// by compare-and-swap, and drops or slips (TC, empty) those past the rate;
// DNS cookies (cookie.go, Server.EnableCookies: RFC 7873 with RFC 9018
// server cookies, SipHash-2-4 in siphash.go) exempt a client that presents
// a valid server cookie from the limit.
//
// The primary side (primary.go, off until Server.EnablePrimary): a
// TransferServer (xfrout.go) serves AXFR and IXFR over TCP on a goroutine per
// connection, apart from the shards, to the sources and TSIG keys of an
// ACL; IXFR comes from a bounded journal of the differences between the
// versions loaded (journal.go); NOTIFY goes to the configured secondaries
// when a serial changes (notify_out.go). Reload swaps each zone on its own
// (reload.go), and every new version passes through Server.zoneChanged.
//
// The secondary side (secondary.go, off until Server.EnableSecondaries)
// follows zones from their primaries by their SOA timers: AXFR and IXFR in
// (xfrin.go), NOTIFY from the primaries (notify_in.go), TSIG keys from a
// key file (tsig.go), a copy of each zone on disk (zonecopy.go). Each
// transfer swaps its zone alone (Server.swapZone); Reload keeps those
// zones, and both take turns on one lock.
//
// The package imports github.com/miekg/dns as mdns, and its constants
// (mdns.TypeOPT, mdns.ClassINET, mdns.RcodeRefused, ...) are the one
// vocabulary of wire values here, in the hot path too, which calls no
// miekg code: only the header bits and sizes miekg does not export are
// defined locally.
package dns

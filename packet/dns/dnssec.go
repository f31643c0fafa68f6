package dns

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	mdns "github.com/miekg/dns"
)

// Pre-signed zones (RFC 4033-4035, RFC 5155): shardd signs nothing. A
// zone's RRSIGs stay at their owner's node, indexed by the type they cover
// (node.sigs); its NSEC3 records live apart from the names (the hashed
// owners are not names a query can find), in the chain, with the NSEC
// records, sorted as the proofs need them: NSEC by the canonical order of
// their owners (RFC 4034 6.1), NSEC3 by hash. A proof that depends on the
// query name (NXDOMAIN, wildcard answers) is found at query time by a binary
// search of this chain, and its records are copied from link.wire.
// Signatures are not verified (neither does Knot DNS at load): the chain's
// structure is checked, as ldns-verify-zone checks it.

// denial is how a zone proves that names and types do not exist.
type denial uint8

const (
	denyNone  denial = iota // unsigned (or signed with no chain: no proofs)
	denyNSEC                // RFC 4035
	denyNSEC3               // RFC 5155
)

// maxNSEC3Iterations bounds the NSEC3 hash iterations of a zone served:
// a query for a name that does not exist hashes it 1 + iterations times
// (an NXDOMAIN took 0.3 us at 0, 18 us at 150, and the hash alone 19 ms at
// the 65535 a hostile zone or primary may set, on this project's test
// machine: BenchmarkNXDOMAINNSEC3Iterations). Validators treat zones above it as
// insecure (RFC 9276 3.2: Unbound and BIND at 150, some at 50), so refusing
// them loses no security. Knot DNS 3.2 loads them.
const maxNSEC3Iterations = 150

// maxLinkSize bounds an NSEC or NSEC3 record with its RRSIGs, packed: a
// proof is copied into the negative answers of every name it covers the
// wildcard of, so one big link (many made-up RRSIGs, from a hostile
// primary) multiplied the heap (37 KB more zone took 235 MB more with
// 20,000 names). 4 KB holds an NSEC3 with four RSA-4096 signatures.
const maxLinkSize = 4096

// chain is a signed zone's NSEC or NSEC3 chain.
type chain struct {
	kind      denial
	links     []*link // sorted by key
	originLen int     // the wire length of the zone's origin
	maxWire   int     // the longest link's wire: the most a query-time proof inserts
	// NSEC3 hashing (from NSEC3PARAM): SHA-1, iterations, salt.
	iterations uint16
	salt       []byte
}

// link is one NSEC or NSEC3 record of the chain with its signatures.
type link struct {
	key  []byte // NSEC: canonicalKey of the owner; NSEC3: the owner's hash
	next []byte // the key of the next owner (NSEC3: the next hashed owner)
	rr   mdns.RR
	sigs []mdns.RR
	// wire is rr and sigs packed, ready to append to a reply as count
	// authority records; their owner names end in a pointer to the zone's
	// origin, which every query name in the zone ends with, at the offsets
	// ptrs (patchOrigin sets it).
	wire  []byte
	ptrs  []uint16
	rrLen int // wire[:rrLen] is rr, the rest its RRSIGs
	count uint16
	// labels are where the labels of rr's owner before the origin start.
	labels []uint8
	// short is the RRSIGs again with their owners as pointers, at
	// shortPtrs, to rr's owner (as Knot DNS compresses them); a reply uses
	// it when rr's owner sits where a pointer reaches (proofAt).
	short     []byte
	shortPtrs []uint16
}

// isSig reports rr as an RRSIG, and its covered type.
func isSig(rr mdns.RR) (uint16, bool) {
	if s, ok := rr.(*mdns.RRSIG); ok {
		return s.TypeCovered, true
	}
	return 0, false
}

// addNSEC3 keeps an NSEC3 record, or an RRSIG that covers one, aside from
// the names: NSEC3 owners are hashes, not names a query can reach.
func (z *Zone) addNSEC3(rr mdns.RR) {
	if z.nsec3 == nil {
		z.nsec3 = map[string][]mdns.RR{}
	}
	h := rr.Header()
	z.nsec3[h.Name] = append(z.nsec3[h.Name], rr) // duplicates go in newZone
	z.Count++
}

// isNSEC3Record reports whether rr belongs to the NSEC3 chain.
func isNSEC3Record(rr mdns.RR) bool {
	if rr.Header().Rrtype == mdns.TypeNSEC3 {
		return true
	}
	t, ok := isSig(rr)
	return ok && t == mdns.TypeNSEC3
}

// indexSigs files n's RRSIGs by the type they cover.
func (n *node) indexSigs() {
	sigs := n.rrsets[mdns.TypeRRSIG]
	if sigs == nil {
		return
	}
	n.sigs = map[uint16][]mdns.RR{}
	for _, rr := range sigs {
		t, _ := isSig(rr)
		n.sigs[t] = append(n.sigs[t], rr)
	}
}

// loadChain builds z's NSEC or NSEC3 chain, if it is signed with one, and
// checks it as ldns-verify-zone does: every link points to an existing
// link and every authoritative name has its NSEC (RFC 4035 2.3). Zones
// with no chain are served without proofs.
func (z *Zone) loadChain() error {
	apex := z.nodes[z.Origin]
	hasNSEC := false
	for _, n := range z.nodes {
		if n.rrsets[mdns.TypeNSEC] != nil {
			hasNSEC = true
			break
		}
	}
	switch {
	case hasNSEC && len(z.nsec3) > 0:
		return fmt.Errorf("both NSEC and NSEC3 records; a zone is signed with one chain (re-sign it with one)")
	case hasNSEC:
		return z.loadNSEC()
	case len(z.nsec3) > 0:
		if params := apex.rrsets[mdns.TypeNSEC3PARAM]; params != nil {
			return z.loadNSEC3(params[0].(*mdns.NSEC3PARAM))
		}
		// No NSEC3PARAM (ldns-verify-zone accepts that): the chain's
		// parameters are those of its first record.
		return z.loadNSEC3(z.firstNSEC3Params())
	}
	return nil
}

// loadNSEC builds the NSEC chain.
func (z *Zone) loadNSEC() error {
	c := &chain{kind: denyNSEC}
	for _, name := range z.sortedNames() {
		n := z.nodes[name]
		set := n.rrsets[mdns.TypeNSEC]
		if set == nil {
			if z.authoritative(n) && len(n.rrsets) > 0 {
				return fmt.Errorf("%s has no NSEC record but the zone is signed with NSEC (NSEC chain broken; re-sign the zone)", name)
			}
			continue
		}
		if len(set) > 1 {
			return fmt.Errorf("%s has %d NSEC records; a name has one (re-sign the zone)", name, len(set))
		}
		nsec := set[0].(*mdns.NSEC)
		c.links = append(c.links, &link{key: canonicalKey(name), next: canonicalKey(canonical(nsec.NextDomain)), rr: nsec, sigs: n.sigs[mdns.TypeNSEC]})
	}
	if err := c.finish(mustWire(z.Origin)); err != nil {
		return err
	}
	z.chain = c
	return nil
}

// sortedNames are the names of z's nodes in canonical order, so that the
// first error found is the same on every load.
func (z *Zone) sortedNames() []string {
	names := make([]string, 0, len(z.nodes))
	keys := make(map[string][]byte, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
		keys[name] = canonicalKey(name)
	}
	sort.Slice(names, func(i, j int) bool { return bytes.Compare(keys[names[i]], keys[names[j]]) < 0 })
	return names
}

// firstNSEC3Params are the hash parameters of the NSEC3 record with the
// lowest owner.
func (z *Zone) firstNSEC3Params() *mdns.NSEC3PARAM {
	var first *mdns.NSEC3
	for _, rrs := range z.nsec3 {
		for _, rr := range rrs {
			if n3, ok := rr.(*mdns.NSEC3); ok && (first == nil || n3.Hdr.Name < first.Hdr.Name) {
				first = n3
			}
		}
	}
	p := &mdns.NSEC3PARAM{Hash: mdns.SHA1, Iterations: 0, Salt: "-"}
	if first != nil {
		p.Hash, p.Iterations, p.Salt = first.Hash, first.Iterations, first.Salt
	}
	return p
}

// loadNSEC3 builds the NSEC3 chain: its records must use the parameters
// of the NSEC3PARAM.
func (z *Zone) loadNSEC3(p *mdns.NSEC3PARAM) error {
	if p.Hash != mdns.SHA1 {
		return fmt.Errorf("NSEC3PARAM hash algorithm %d; only 1 (SHA-1) exists (RFC 5155 11)", p.Hash)
	}
	if p.Iterations > maxNSEC3Iterations {
		return fmt.Errorf("%d NSEC3 iterations, more than %d: validating resolvers treat the zone as insecure (RFC 9276 3.2) and each NXDOMAIN would hash its name that many times here (re-sign with iterations 0)", p.Iterations, maxNSEC3Iterations)
	}
	salt, err := hex.DecodeString(strings.ReplaceAll(p.Salt, "-", ""))
	if err != nil {
		return fmt.Errorf("NSEC3PARAM salt %q: %v", p.Salt, err)
	}
	if len(salt) > 255 {
		return fmt.Errorf("NSEC3 salt of %d bytes; its length is one byte, 255 at most (RFC 5155 3.2; re-sign with no salt, RFC 9276)", len(salt))
	}
	c := &chain{kind: denyNSEC3, iterations: p.Iterations, salt: salt}
	for owner, rrs := range z.nsec3 {
		l, err := z.nsec3Link(owner, rrs, p)
		if err != nil {
			return err
		}
		if l != nil {
			c.links = append(c.links, l)
		}
	}
	if err := c.finish(mustWire(z.Origin)); err != nil {
		return err
	}
	z.chain = c
	return z.checkNSEC3Coverage()
}

// nsec3Link is the link of the NSEC3 records at owner, nil if none has the
// parameters of p (another chain's, being added or removed: not served).
func (z *Zone) nsec3Link(owner string, rrs []mdns.RR, p *mdns.NSEC3PARAM) (*link, error) {
	var l link
	for _, rr := range rrs {
		if n3, ok := rr.(*mdns.NSEC3); ok && n3.Iterations == p.Iterations && strings.EqualFold(n3.Salt, p.Salt) && n3.Hash == p.Hash {
			if l.rr != nil {
				return nil, fmt.Errorf("%s has two NSEC3 records with the NSEC3PARAM's parameters (re-sign the zone)", owner)
			}
			l.rr = n3
		} else if !ok {
			l.sigs = append(l.sigs, rr)
		}
	}
	if l.rr == nil {
		return nil, nil
	}
	b32 := base32.HexEncoding.WithPadding(base32.NoPadding)
	label, ok := strings.CutSuffix(owner, "."+z.Origin)
	key, err := b32.DecodeString(strings.ToUpper(label))
	if !ok || err != nil || len(key) != sha1.Size {
		return nil, fmt.Errorf("NSEC3 owner %s is not a hashed name in %s (re-sign the zone)", owner, z.Origin)
	}
	next, err := b32.DecodeString(strings.ToUpper(l.rr.(*mdns.NSEC3).NextDomain))
	if err != nil || len(next) != sha1.Size {
		return nil, fmt.Errorf("NSEC3 %s: next hashed owner %q is not a SHA-1 hash (re-sign the zone)", owner, l.rr.(*mdns.NSEC3).NextDomain)
	}
	sortCanonical(l.sigs)
	l.key, l.next = key, next
	return &l, nil
}

// checkNSEC3Coverage checks that every authoritative name with data, and
// every secure delegation, has its NSEC3 (RFC 5155 7.1; opt-out spans skip
// insecure delegations only).
func (z *Zone) checkNSEC3Coverage() error {
	for _, name := range z.sortedNames() {
		n := z.nodes[name]
		if !z.authoritative(n) || len(n.rrsets) == 0 || (n.cut == n && n.rrsets[mdns.TypeDS] == nil) {
			continue
		}
		if z.chain.match(z.chain.hash(mustWire(name))) == nil {
			return fmt.Errorf("%s has no NSEC3 record (NSEC3 chain broken; re-sign the zone)", name)
		}
	}
	return nil
}

// finish sorts the chain, packs its links and checks that each points to
// the next one, the last back to the first (RFC 4034 4.1.1, RFC 5155 3.1.7).
func (c *chain) finish(origin []byte) error {
	c.originLen = len(origin)
	owner := func(l *link) string { return l.rr.Header().Name }
	sort.Slice(c.links, func(i, j int) bool { return bytes.Compare(c.links[i].key, c.links[j].key) < 0 })
	for i, l := range c.links {
		if i > 0 && bytes.Equal(c.links[i-1].key, l.key) {
			return fmt.Errorf("%s and %s hash to the same NSEC3 owner", owner(c.links[i-1]), owner(l))
		}
		want := c.links[(i+1)%len(c.links)]
		if !bytes.Equal(l.next, want.key) {
			return fmt.Errorf("%s %s: the next owner is not %s (chain broken; re-sign the zone)", owner(l), mdns.TypeToString[l.rr.Header().Rrtype], owner(want))
		}
		if err := l.pack(origin); err != nil {
			return err
		}
		if len(l.wire) > maxLinkSize {
			return fmt.Errorf("%s %s with its RRSIGs: %d records, %d bytes, more than %d (each negative answer may carry it; sign with fewer keys)",
				owner(l), mdns.TypeToString[l.rr.Header().Rrtype], 1+len(l.sigs), len(l.wire), maxLinkSize)
		}
		l.count = uint16(1 + len(l.sigs))
		c.maxWire = max(c.maxWire, len(l.wire))
	}
	return nil
}

// pack packs l's records with their owners compressed to the labels
// before origin (the zone's apex, in wire format) and a pointer to it.
func (l *link) pack(origin []byte) error {
	for i, rr := range append([]mdns.RR{l.rr}, l.sigs...) {
		if i == 1 {
			l.rrLen = len(l.wire)
		}
		full, err := packRecords([]mdns.RR{rr})
		if err != nil {
			return err
		}
		owner := mustWire(rr.Header().Name)
		prefix := len(owner) - len(origin)
		if prefix < 0 || !bytes.Equal(owner[prefix:], origin) {
			return fmt.Errorf("%s: not in the zone", rr.Header().Name)
		}
		l.wire = append(l.wire, owner[:prefix]...)
		l.ptrs = append(l.ptrs, uint16(len(l.wire)))
		l.wire = append(l.wire, 0xC0, 0)
		l.wire = append(l.wire, full[len(owner):]...)
		if i == 0 {
			var offs [128]uint8
			l.labels = append([]uint8(nil), offs[:labelOffsets(owner[:prefix], &offs)]...)
		} else {
			l.shortPtrs = append(l.shortPtrs, uint16(len(l.short)))
			l.short = append(l.short, 0xC0, 0)
			l.short = append(l.short, full[len(owner):]...)
		}
	}
	if len(l.sigs) == 0 {
		l.rrLen = len(l.wire)
	}
	return nil
}

// patchOrigin points the owner names of p's records, appended to b at off
// (rr, if sent) and sigOff (its RRSIGs, if sent), at the origin, at offset
// target of the reply (rr's at the labels it shares with the query name,
// if any); the short RRSIGs' owners at rr's.
func (p proof) patchOrigin(b []byte, off, sigOff, target int, rr, sigs bool) {
	l := p.l
	if sigs && p.short {
		for _, q := range l.shortPtrs {
			at := sigOff + int(q)
			b[at], b[at+1] = 0xC0|byte(off>>8), byte(off)
		}
	}
	for i, q := range l.ptrs {
		at, to := off+int(q), target
		switch {
		case int(q) >= l.rrLen:
			if !sigs || p.short {
				continue
			}
			at = sigOff + int(q) - l.rrLen
		case !rr:
			continue
		case i == 0 && p.drop > 0:
			at, to = at-p.drop, p.shared
		}
		b[at], b[at+1] = 0xC0|byte(to>>8), byte(to)
	}
}

// proof is a query-time proof as one reply sends it: its link (nil for
// none); how many bytes of its record's owner go (drop), the labels it
// shares with the query name, a pointer to them (at message offset
// shared) instead; and whether its RRSIGs go short.
type proof struct {
	l      *link
	drop   int
	shared int
	short  bool
}

// proofAt is the proof l for a reply to the query name name (wire format,
// lower case, in the zone whose origin takes originLen bytes) where its
// record goes at message offset off. Its owner is compressed as Knot DNS
// compresses it, against the query name: the labels before the origin
// that both end with go as a pointer into the question. Its RRSIGs are
// short if a pointer reaches off. It allocates nothing.
func proofAt(l *link, name []byte, originLen, off int) proof {
	p := proof{l: l, short: off < 0x3FFF}
	if l == nil || len(l.ptrs) == 0 || len(name) < originLen {
		return p
	}
	po := l.labels // the owner's labels before the origin
	np, e := len(po), len(name)-originLen
	if np == 0 {
		return p
	}
	// The name's last label before the origin, if as long as the owner's,
	// starts at e-n-1 (a quick no for most names).
	n := int(l.wire[po[np-1]])
	if e-n-1 < 0 || int(name[e-n-1]) != n || !labelEqual(l.wire[po[np-1]:], name[e-n-1:]) {
		return p
	}
	var qo [128]uint8 // the name's labels before the origin
	nq := labelOffsets(name[:e], &qo)
	i, j := np, nq
	for i > 0 && j > 0 && labelEqual(l.wire[po[i-1]:], name[qo[j-1]:]) {
		i, j = i-1, j-1
	}
	if i == np {
		return p
	}
	p.drop, p.shared = int(l.ptrs[0])-int(po[i]), headerLen+int(qo[j])
	return p
}

// labelOffsets stores where each label of the uncompressed labels b
// starts, and returns how many there are (at most len(offs), offsets
// below 256).
func labelOffsets(b []byte, offs *[128]uint8) int {
	n := 0
	for off := 0; off < len(b) && n < len(offs) && off < 256; off += int(b[off]) + 1 {
		offs[n] = uint8(off)
		n++
	}
	return n
}

// labelEqual compares the labels at the start of a and b, ASCII case
// folded.
func labelEqual(a, b []byte) bool {
	n := int(a[0])
	if n != int(b[0]) || len(a) <= n || len(b) <= n {
		return false
	}
	for i := 1; i <= n; i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (p proof) rrLen() int {
	if p.l == nil {
		return 0
	}
	return p.l.rrLen - p.drop
}

// appendRR appends p's record, its owner's origin pointer to be patched.
func (p proof) appendRR(b []byte) []byte {
	l := p.l
	o := int(l.ptrs[0])
	b = append(b, l.wire[:o-p.drop]...)
	b = append(b, 0xC0, 0)
	return append(b, l.wire[o+2:l.rrLen]...)
}

// sigs is the proof's RRSIGs as the reply sends them.
func (p proof) sigs() []byte {
	switch {
	case p.l == nil:
		return nil
	case p.short:
		return p.l.short
	}
	return p.l.wire[p.l.rrLen:]
}

// size is the length of p's records, 0 for none.
func (p proof) size() int { return p.rrLen() + len(p.sigs()) }

// authoritative reports whether n is a name the zone answers for with its
// own data: not below a cut (the cut itself holds the NS and DS).
func (z *Zone) authoritative(n *node) bool {
	return n.cut == nil || n.cut == n
}

// packRecords packs rrs uncompressed, back to back.
func packRecords(rrs []mdns.RR) ([]byte, error) {
	buf := make([]byte, mdns.MaxMsgSize)
	var out []byte
	for _, rr := range rrs {
		off, err := mdns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", rr, err)
		}
		out = append(out, buf[:off]...)
	}
	return out, nil
}

func mustWire(name string) []byte {
	w, _ := wireName(name) // names in the zone packed once already
	return w
}

// canonicalKey is name (canonical, presentation format) as bytes that sort
// like the canonical order of names (RFC 4034 6.1).
func canonicalKey(name string) []byte {
	var k [2 * 255]byte
	w := mustWire(name)
	return bytes.Clone(appendCanonicalKey(k[:0], w))
}

// appendCanonicalKey appends the key of the lower-case wire-format name w:
// its labels from the last to the first, each ended by a 0 byte, with the
// bytes 0 and 1 inside a label escaped as 1 1 and 1 2. A shorter label sorts
// first, as does a name with fewer labels. It allocates nothing when b has
// room (2*255 bytes).
func appendCanonicalKey(b, w []byte) []byte {
	var offs [128]uint8
	n := 0
	for off := 0; off < len(w) && w[off] != 0; off += int(w[off]) + 1 {
		offs[n] = uint8(off)
		n++
	}
	for i := n - 1; i >= 0; i-- {
		off := int(offs[i])
		for _, c := range w[off+1 : off+1+int(w[off])] {
			if c <= 1 {
				b = append(b, 1, c+1)
			} else {
				b = append(b, c)
			}
		}
		b = append(b, 0)
	}
	return b
}

// hash is the NSEC3 hash of the lower-case wire-format name w (RFC 5155 5).
// It allocates nothing.
func (c *chain) hash(w []byte) [sha1.Size]byte {
	var buf [255 + 255]byte
	n := copy(buf[:], w)
	n += copy(buf[n:], c.salt)
	h := sha1.Sum(buf[:n])
	for i := uint16(0); i < c.iterations; i++ {
		n = copy(buf[:], h[:])
		n += copy(buf[n:], c.salt)
		h = sha1.Sum(buf[:n])
	}
	return h
}

// search returns the index of the last link whose key is <= key, or -1.
func (c *chain) search(key []byte) int {
	lo, hi := 0, len(c.links) // links[:lo] <= key < links[hi:]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(c.links[m].key, key) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// match is the link whose key is key, or nil.
func (c *chain) match(h [sha1.Size]byte) *link {
	if i := c.search(h[:]); i >= 0 && bytes.Equal(c.links[i].key, h[:]) {
		return c.links[i]
	}
	return nil
}

// cover is the link that covers key, which no link has: the last one
// before it, or the last of the chain when key sorts before the first (the
// last link wraps around to the first).
func (c *chain) cover(key []byte) *link {
	i := c.search(key)
	if i < 0 {
		i = len(c.links) - 1
	}
	return c.links[i]
}

// has reports whether t's body holds l's record already (a proof that
// serves twice is sent once, as Knot DNS does).
func (t *template) has(l *link) bool {
	for _, k := range t.links {
		if k == l {
			return true
		}
	}
	return false
}

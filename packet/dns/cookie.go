package dns

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018): a
// server cookie is version 1, three reserved bytes, a timestamp (seconds,
// serial arithmetic) and SipHash-2-4 under the server secret of the client
// cookie, those 8 bytes and the client's address.
const (
	clientCookieLen = 8
	serverCookieLen = 16 // RFC 9018 4: the only server cookie made here
	maxCookieLen    = 40 // client + the longest server cookie (RFC 7873 4)
	cookieVersion   = 1
	// A server cookie is valid from 1 hour in the past to 5 minutes in the
	// future (clock skew across an anycast set), and reissued once it is
	// half an hour old (RFC 9018 4.3).
	cookieMaxAge   = 3600
	cookieMaxAhead = 300
	cookieRenew    = 1800
	cookieOptLen   = 4 + clientCookieLen + serverCookieLen // the reply's COOKIE option
)

// cookieSecrets are the server secrets every shard shares: the current one
// makes cookies, the previous one is still accepted after a rotation.
type cookieSecrets struct {
	cur, prev [2]uint64 // SipHash keys k0, k1
	hasPrev   bool
}

// cookieState is what a query's COOKIE option says.
type cookieState uint8

const (
	cookieNone      cookieState = iota // no COOKIE option: nothing to answer
	cookieClient                       // a client cookie, with no server cookie or one not valid
	cookieValid                        // a server cookie this server (or its previous secret) made
	cookieMalformed                    // a length RFC 7873 5.2.2 answers with FORMERR
)

// findCookie returns where the COOKIE option's data starts in opts (an OPT
// record's rdata) and its length; off < 0 when there is none. A length no
// cookie can have (below 8, 9 to 15, above 40) is malformed (RFC 7873
// 5.2.2); the first COOKIE option counts. An option that runs past the
// rdata ends the walk: the options before it still count.
func findCookie(opts []byte) (off, n int, st cookieState) {
	for i := 0; i+4 <= len(opts); {
		code := binary.BigEndian.Uint16(opts[i:])
		l := int(binary.BigEndian.Uint16(opts[i+2:]))
		if i+4+l > len(opts) {
			break
		}
		if code == mdns.EDNS0COOKIE {
			if l < clientCookieLen || (l > clientCookieLen && l < clientCookieLen+8) || l > maxCookieLen {
				return -1, 0, cookieMalformed
			}
			return i + 4, l, cookieClient
		}
		i += 4 + l
	}
	return -1, 0, cookieNone
}

// EnableCookies makes the server answer COOKIE options with server cookies
// under a fresh random secret. Call it before the handlers serve.
func (s *Server) EnableCookies() error {
	s.cookiesOn = true
	return s.RotateCookieSecret()
}

// RotateCookieSecret draws a new server secret; cookies made under the one
// it replaces stay valid until the next rotation, so a client whose cookie
// is older than one rotation period gets a fresh one instead (RFC 9018 5).
func (s *Server) RotateCookieSecret() error {
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	s.setCookieSecret(k)
	return nil
}

func (s *Server) setCookieSecret(k [16]byte) {
	next := &cookieSecrets{cur: [2]uint64{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])}}
	if old := s.cookieKeys.Load(); old != nil {
		next.prev, next.hasPrev = old.cur, true
	}
	s.cookieKeys.Store(next)
}

// unixTime is the cookie clock: now in seconds, or the test's.
func (s *Server) unixTime() int64 {
	if s.cookieClock != nil {
		return int64(s.cookieClock())
	}
	return time.Now().Unix()
}

// serverCookieHash is the RFC 9018 hash of a server cookie whose first 8
// bytes are head, for client cookie cc and client address ip.
func serverCookieHash(key [2]uint64, cc, head []byte, ip netip.Addr) uint64 {
	var buf [clientCookieLen + 8 + 16]byte
	n := copy(buf[:], cc)
	n += copy(buf[n:], head)
	if ip.Is4() {
		a := ip.As4()
		n += copy(buf[n:], a[:])
	} else {
		a := ip.As16()
		n += copy(buf[n:], a[:])
	}
	return siphash24(key[0], key[1], buf[:n])
}

// cookie reads the query's COOKIE option (at m[off:off+n]) and prepares the
// reply's in h.cookie: the client cookie and either the server cookie it
// presented, if valid and young, or a fresh one. It returns whether the
// presented server cookie is valid.
func (h *Handler) cookie(m []byte, off, n int, src netip.Addr) cookieState {
	keys := h.srv.cookieKeys.Load()
	now := uint32(h.unixClock.read(h.srv.unixTime))
	cc := m[off : off+clientCookieLen]
	copy(h.cookieOut[:], cc)
	st := cookieClient
	if n == clientCookieLen+serverCookieLen {
		sc := m[off+clientCookieLen : off+n]
		if age, ok := checkServerCookie(keys, cc, sc, src, now); ok {
			st = cookieValid
			if age < cookieRenew {
				copy(h.cookieOut[clientCookieLen:], sc)
				return st
			}
		}
	}
	out := h.cookieOut[clientCookieLen:]
	out[0], out[1], out[2], out[3] = cookieVersion, 0, 0, 0
	binary.BigEndian.PutUint32(out[4:], now)
	binary.LittleEndian.PutUint64(out[8:], serverCookieHash(keys.cur, cc, out[:8], src))
	return st
}

// checkServerCookie reports whether sc is a server cookie made for cc and
// src under the current or previous secret and in date at now, and its age.
func checkServerCookie(keys *cookieSecrets, cc, sc []byte, src netip.Addr, now uint32) (int32, bool) {
	if sc[0] != cookieVersion {
		return 0, false
	}
	age := int32(now - binary.BigEndian.Uint32(sc[4:]))
	if age > cookieMaxAge || age < -cookieMaxAhead {
		return 0, false
	}
	var want [8]byte
	binary.LittleEndian.PutUint64(want[:], serverCookieHash(keys.cur, cc, sc[:8], src))
	if subtle.ConstantTimeCompare(want[:], sc[8:]) == 1 {
		return age, true
	}
	if !keys.hasPrev {
		return 0, false
	}
	binary.LittleEndian.PutUint64(want[:], serverCookieHash(keys.prev, cc, sc[:8], src))
	return age, subtle.ConstantTimeCompare(want[:], sc[8:]) == 1
}

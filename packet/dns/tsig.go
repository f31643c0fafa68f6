package dns

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/shardd/shardd/packet/secretfile"
)

// tsigErrorCode is the TSIG error (RFC 8945 5.2) of a request whose TSIG
// did not verify with err: BADKEY for a key not held, BADTIME for a time
// past the fudge, else BADSIG.
func tsigErrorCode(err error) uint16 {
	switch {
	case errors.Is(err, mdns.ErrSecret):
		return mdns.RcodeBadKey
	case errors.Is(err, mdns.ErrTime):
		return mdns.RcodeBadTime
	}
	return mdns.RcodeBadSig
}

// tsigErrorRecord is the TSIG record of the NOTAUTH answer to request id,
// whose TSIG t did not verify: the error code and no MAC (RFC 8945 5.3.2).
func tsigErrorRecord(id uint16, t *mdns.TSIG, code uint16) *mdns.TSIG {
	return &mdns.TSIG{Hdr: mdns.RR_Header{Name: t.Hdr.Name, Rrtype: mdns.TypeTSIG, Class: mdns.ClassANY},
		Algorithm: t.Algorithm, TimeSigned: t.TimeSigned, Fudge: t.Fudge, OrigId: id, Error: code}
}

// TSIGKey is one shared secret for TSIG (RFC 8945). Its String never shows
// the secret, so a key printed by mistake does not leak it.
type TSIGKey struct {
	Name      string // canonical, fully qualified
	Algorithm string // canonical, fully qualified: "hmac-sha256."
	Secret    string // base64, as the key file gives it
}

func (k TSIGKey) String() string   { return k.Name + " (" + strings.TrimSuffix(k.Algorithm, ".") + ")" }
func (k TSIGKey) GoString() string { return k.String() }

// TSIGKeys are the keys of a key file, by canonical name.
type TSIGKeys map[string]TSIGKey

// Secrets returns the keys in the form miekg/dns's Client, Transfer and
// Server take (TsigSecret): key name -> base64 secret.
func (ks TSIGKeys) Secrets() map[string]string {
	m := make(map[string]string, len(ks))
	for n, k := range ks {
		m[n] = k.Secret
	}
	return m
}

// Algorithms returns each key's algorithm by key name (both canonical), as
// PrimaryConfig.TSIGAlgorithms takes them.
func (ks TSIGKeys) Algorithms() map[string]string {
	m := make(map[string]string, len(ks))
	for n, k := range ks {
		m[n] = k.Algorithm
	}
	return m
}

// Get returns the key named name (any case, with or without the final dot).
func (ks TSIGKeys) Get(name string) (TSIGKey, bool) {
	k, ok := ks[canonical(name)]
	return k, ok
}

// tsigAlgorithms are the algorithms accepted (HMAC-MD5 is not: RFC 8945 6).
var tsigAlgorithms = map[string]string{
	"hmac-sha1": mdns.HmacSHA1, "hmac-sha224": mdns.HmacSHA224, "hmac-sha256": mdns.HmacSHA256,
	"hmac-sha384": mdns.HmacSHA384, "hmac-sha512": mdns.HmacSHA512,
}

// maxKeyFile bounds what LoadTSIGKeys reads.
const maxKeyFile = 1 << 20

// LoadTSIGKeys reads a key file (see ParseTSIGKeys) through
// secretfile.Read. A file that other users may read or write is refused:
// its secrets are the zones' only protection (fix: chmod 0600 or 0640,
// owned by the daemon's user or root); so is anything but a regular file
// (a FIFO is refused without waiting for a writer).
func LoadTSIGKeys(path string) (TSIGKeys, error) {
	b, err := secretfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("TSIG key file %w", err)
	}
	ks, err := ParseTSIGKeys(b)
	if err != nil {
		return nil, fmt.Errorf("TSIG key file %s: %v", path, err)
	}
	return ks, nil
}

// ParseTSIGKeys reads keys in either form the usual tools write: BIND's
// (tsig-keygen, rndc-confgen -a, and what Knot's keymgr reads back)
//
//	key "name" { algorithm hmac-sha256; secret "BASE64"; };
//
// or Knot's (keymgr -t NAME hmac-sha256)
//
//	key:
//	  - id: name
//	    algorithm: hmac-sha256
//	    secret: BASE64
//
// Lines starting with # (and, in BIND's form, // and /* */ comments) are
// ignored. Errors never quote a secret.
func ParseTSIGKeys(b []byte) (TSIGKeys, error) {
	var ks TSIGKeys
	var err error
	if isKnotKeys(b) {
		ks, err = parseKnotKeys(b)
	} else {
		ks, err = parseBINDKeys(b)
	}
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, errors.New("no key in it (write one with tsig-keygen NAME or keymgr -t NAME hmac-sha256)")
	}
	return ks, nil
}

// isKnotKeys reports whether the first line that is not blank or a
// comment is Knot's "key:".
func isKnotKeys(b []byte) bool {
	for line := range bytes.Lines(b) {
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' {
			continue
		}
		return l == "key:"
	}
	return false
}

// add checks one key and adds it.
func (ks TSIGKeys) add(name, alg, secret string) error {
	if name == "" {
		return errors.New("a key without a name")
	}
	if _, ok := mdns.IsDomainName(name); !ok {
		return fmt.Errorf("key %q: not a domain name", name)
	}
	cn := canonical(name)
	if _, dup := ks[cn]; dup {
		return fmt.Errorf("key %s is given twice", cn)
	}
	a, ok := tsigAlgorithms[strings.ToLower(strings.TrimSuffix(alg, "."))]
	if !ok {
		// Not quoted: a secret written on the wrong line must not reach the log.
		return fmt.Errorf("key %s: the algorithm is missing or not supported (use hmac-sha256; also hmac-sha1, -sha224, -sha384, -sha512; not hmac-md5)", cn)
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("key %s: the secret is not base64 (copy it as tsig-keygen or keymgr printed it)", cn)
	}
	ks[cn] = TSIGKey{Name: cn, Algorithm: a, Secret: secret}
	return nil
}

// parseKnotKeys reads Knot's YAML key section, one "field: value" a line.
func parseKnotKeys(b []byte) (TSIGKeys, error) {
	ks := TSIGKeys{}
	var cur *[3]string // id, algorithm, secret
	var keys [][3]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || (l == "key:" && cur == nil) {
			continue
		}
		field, value, ok := strings.Cut(strings.TrimPrefix(l, "- "), ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want FIELD: VALUE (id, algorithm, secret)", n)
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		if strings.HasPrefix(l, "- ") {
			keys = append(keys, [3]string{})
			cur = &keys[len(keys)-1]
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: a field before the first \"- id:\"", n)
		}
		switch strings.TrimSpace(field) {
		case "id":
			cur[0] = value
		case "algorithm":
			cur[1] = value
		case "secret":
			cur[2] = value
		default:
			return nil, fmt.Errorf("line %d: unknown field %q (want id, algorithm, secret)", n, strings.TrimSpace(field))
		}
	}
	for _, k := range keys {
		if err := ks.add(k[0], k[1], k[2]); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// parseBINDKeys reads BIND's key statements.
func parseBINDKeys(b []byte) (TSIGKeys, error) {
	toks, err := bindTokens(b)
	if err != nil {
		return nil, err
	}
	ks := TSIGKeys{}
	for len(toks) > 0 {
		// key NAME { (algorithm ALG ; | secret SECRET ;)* } ;
		if len(toks) < 3 || toks[0] != "key" || toks[2] != "{" {
			return nil, errors.New(`want key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`)
		}
		name, alg, secret := toks[1], "", ""
		toks = toks[3:]
		for len(toks) > 0 && toks[0] != "}" {
			if len(toks) < 3 || toks[2] != ";" {
				return nil, fmt.Errorf("key %s: want FIELD VALUE; inside { }", name)
			}
			switch toks[0] {
			case "algorithm":
				alg = toks[1]
			case "secret":
				secret = toks[1]
			default:
				return nil, fmt.Errorf("key %s: unknown field %q (want algorithm, secret)", name, toks[0])
			}
			toks = toks[3:]
		}
		if len(toks) < 2 || toks[1] != ";" {
			return nil, fmt.Errorf("key %s: want }; at its end", name)
		}
		toks = toks[2:]
		if err := ks.add(name, alg, secret); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// bindTokens splits BIND configuration text into words, quoted strings
// (unquoted) and the punctuation { } ;, dropping comments.
func bindTokens(b []byte) ([]string, error) {
	var toks []string
	s := string(b)
	for i := 0; ; {
		var err error
		if i, err = skipBlank(s, i); err != nil {
			return nil, err
		}
		if i == len(s) {
			return toks, nil
		}
		switch c := s[i]; {
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, string(c))
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, errors.New("a quoted string is never closed")
			}
			toks = append(toks, s[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
}

// skipBlank returns where the next token after s[i:] begins (len(s) at
// the end), past white space and comments (#, //, /* */).
func skipBlank(s string, i int) (int, error) {
	for i < len(s) {
		switch {
		case strings.IndexByte(" \t\r\n", s[i]) >= 0:
			i++
		case s[i] == '#' || strings.HasPrefix(s[i:], "//"):
			if nl := strings.IndexByte(s[i:], '\n'); nl >= 0 {
				i += nl
			} else {
				i = len(s)
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return 0, errors.New("a /* comment is never closed")
			}
			i += 2 + end + 2
		default:
			return i, nil
		}
	}
	return i, nil
}

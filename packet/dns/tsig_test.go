package dns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testSecret  = "m6mcDqezJDZ/1Gev6847tlTHAJp01DelBFGjU2fWuxw="
	knotKeyText = "# hmac-sha256:xfr:" + testSecret + "\nkey:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: " + testSecret + "\n"
	bindKeyText = "// from tsig-keygen\nkey \"Other.Key\" {\n\talgorithm hmac-sha512;\n\tsecret \"" + testSecret + "\";\n};\n" +
		"/* a second */ key xfr { algorithm HMAC-SHA256; secret \"" + testSecret + "\"; };\n"
)

func TestParseTSIGKeys(t *testing.T) {
	for name, text := range map[string]string{"knot": knotKeyText, "bind": bindKeyText} {
		ks, err := ParseTSIGKeys([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		k, ok := ks.Get("XFR")
		if !ok || k.Name != "xfr." || k.Algorithm != "hmac-sha256." || k.Secret != testSecret {
			t.Errorf("%s: key xfr = %+v %v", name, k, ok)
		}
		if got := ks.Secrets()["xfr."]; got != testSecret {
			t.Errorf("%s: Secrets()[xfr.] = %q", name, got)
		}
		if s := fmt.Sprintf("%v %+v %#v %s", k, k, k, ks); strings.Contains(s, testSecret) {
			t.Errorf("%s: printing a key shows its secret: %s", name, s)
		}
	}
	ks, _ := ParseTSIGKeys([]byte(bindKeyText))
	if k, ok := ks.Get("other.key."); !ok || k.Algorithm != "hmac-sha512." {
		t.Errorf("other.key = %+v %v", k, ok)
	}
}

func TestParseTSIGKeysErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"", "no key in it"},
		{"# only a comment\n", "no key in it"},
		{`key "a" { algorithm hmac-md5; secret "` + testSecret + `"; };`, `the algorithm is missing or not supported`},
		{`key "a" { algorithm hmac-sha256; secret "not base64!"; };`, "the secret is not base64"},
		{`key "a" { algorithm hmac-sha256; secret "` + testSecret + `"; }; key "A." { algorithm hmac-sha256; secret "` + testSecret + `"; };`, "given twice"},
		{`key "a" { algorithm hmac-sha256; secret "` + testSecret + `" };`, "want FIELD VALUE;"},
		{`key "a" { algorithm hmac-sha256; secret "` + testSecret + `"; }`, "want }; at its end"},
		{`key "a" { algorithm hmac-sha256; secret "` + testSecret, "never closed"},
		{`options { };`, `want key "NAME"`},
		{"key:\n  - id: a\n    colour: red\n", `unknown field "colour"`},
		{"key:\n    secret: x\n", `before the first "- id:"`},
		{"key:\n  - id: a\n    algorithm hmac-sha256\n", "want FIELD: VALUE"},
	} {
		_, err := ParseTSIGKeys([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.text, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("%q: the error quotes the secret: %v", c.text, err)
		}
	}
}

// TestLoadTSIGKeysModes: a key file every user may read is refused; 0640
// and 0600 load.
func TestLoadTSIGKeysModes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o640, true}, {0o644, false}, {0o602, false}} {
		p := filepath.Join(dir, fmt.Sprintf("k%o", c.mode))
		if err := os.WriteFile(p, []byte(knotKeyText), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTSIGKeys(p)
		if (err == nil) != c.ok {
			t.Errorf("mode %04o: error %v, want ok=%v", c.mode, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod") {
			t.Errorf("mode %04o: the error names no fix: %v", c.mode, err)
		}
	}
	if _, err := LoadTSIGKeys(filepath.Join(dir, "absent")); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("absent file: %v", err)
	}
}

// FuzzParseTSIGKeys: any key file text gives keys that are all usable
// (a known algorithm, a secret that decodes) or one error line that never
// quotes a secret.
func FuzzParseTSIGKeys(f *testing.F) {
	f.Add(knotKeyText)
	f.Add(bindKeyText)
	f.Add("key \"a\" { secret \"x\"; };")
	f.Add("key:\n- id: a\n  secret: \"" + testSecret + "\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		ks, err := ParseTSIGKeys([]byte(text))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error quotes the secret: %q", err)
			}
			return
		}
		if len(ks) == 0 {
			t.Fatal("no keys and no error")
		}
		for n, k := range ks {
			if n != k.Name || canonical(n) != n {
				t.Fatalf("key %q stored as %q", k.Name, n)
			}
			if _, ok := tsigAlgorithms[strings.TrimSuffix(k.Algorithm, ".")]; !ok {
				t.Fatalf("key %s: algorithm %q", n, k.Algorithm)
			}
			if _, err := (tsigTestSign{k}).sign(); err != nil {
				t.Fatalf("key %s does not sign: %v", n, err)
			}
		}
	})
}

// Package tooltest finds the third-party programs (dig, knotd, logger,
// rsyslogd...) that tests run against.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of name. Missing, it skips the test, except
// under CI (SHARDD_REQUIRE_TOOLS=1), where .ci/run installs every tool and
// a skip would hide a broken install.
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is not installed, and SHARDD_REQUIRE_TOOLS=1", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// RequireRoot skips the test, saying why it needs root, unless it runs as
// root; under CI (SHARDD_REQUIRE_TOOLS=1), which runs as root, it fails
// instead, so that a lost privilege does not pass as a skip.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SHARDD_REQUIRE_TOOLS") == "1" {
		t.Fatalf("needs root %s, and SHARDD_REQUIRE_TOOLS=1", why)
	}
	t.Skipf("needs root %s", why)
}

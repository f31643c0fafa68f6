package skip

import "testing"

func TestNeedsRoot(t *testing.T) {
	t.Log("checking the euid")
	t.Skip("needs root")
}

func TestNeedsTool(t *testing.T) { t.Skipf("%s is not installed", "knotd") }

func TestRuns(t *testing.T) {}

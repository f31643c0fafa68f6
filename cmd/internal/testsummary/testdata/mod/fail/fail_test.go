package fail

import "testing"

func TestOK(t *testing.T) { t.Log("hidden: this test passes") }

func TestBroken(t *testing.T) {
	t.Log("context logged before the failure")
	t.Errorf("got %d, want %d", 1, 2)
}

func TestTable(t *testing.T) {
	for _, name := range []string{"good", "bad"} {
		t.Run(name, func(t *testing.T) {
			if name == "bad" {
				t.Fatal("case bad failed")
			}
			t.Log("hidden: case good passes")
		})
	}
}

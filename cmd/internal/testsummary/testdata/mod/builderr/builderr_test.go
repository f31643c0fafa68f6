package builderr

import "testing"

func TestAnswer(t *testing.T) { _ = Answer() }

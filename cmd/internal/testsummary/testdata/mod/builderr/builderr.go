package builderr

// Answer does not compile: a string is not an int.
func Answer() int { return "42" }

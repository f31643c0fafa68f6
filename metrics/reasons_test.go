package metrics

import "testing"

// TestReasonLabels pins the label values of shardd_tcp_closed_total and
// shardd_tcp_accept_errors_total (dashboards and the README match on them)
// and checks that every value a Counts array holds has a name.
func TestReasonLabels(t *testing.T) {
	checkNames(t, "close reasons", map[CloseReason]string{
		CloseEOF: "eof", CloseIdle: "idle", CloseLimit: "limit", CloseFrameTooLarge: "frame_too_large",
		CloseError: "error", CloseWriteTimeout: "write_timeout", CloseShutdown: "shutdown",
		ClosePerIP: "per_ip_limit", CloseEvicted: "evicted",
	}, CloseReasons, len(Counts{}.Closed), "CloseReason(9)")
	checkNames(t, "accept errnos", map[AcceptErrno]string{
		AcceptEMFILE: "EMFILE", AcceptENFILE: "ENFILE", AcceptENOBUFS: "ENOBUFS", AcceptENOMEM: "ENOMEM", AcceptOther: "other",
	}, AcceptErrnos, len(Counts{}.AcceptErrors), "AcceptErrno(5)")
}

// checkNames checks that names has an entry for each of the n values of an
// enum (an array of arrayLen counters holds one per value), that String
// returns each, and that it returns outOfRange for the value n.
func checkNames[E interface {
	~uint8
	String() string
}](t *testing.T, kind string, names map[E]string, n, arrayLen int, outOfRange string) {
	t.Helper()
	if len(names) != n || arrayLen != n {
		t.Fatalf("%d %s named here, %d values, arrays of %d", len(names), kind, n, arrayLen)
	}
	for e, want := range names {
		if got := e.String(); got != want {
			t.Errorf("%T(%d) = %q, want %q", e, e, got, want)
		}
	}
	if got := E(n).String(); got != outOfRange {
		t.Errorf("out of range: %q, want %q", got, outOfRange)
	}
}

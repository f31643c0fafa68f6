package metrics

import "testing"

// TestReasonLabels pins the label values of shardd_tcp_closed_total and
// shardd_tcp_accept_errors_total (dashboards and the README match on them)
// and checks that every value a Counts array holds has a name.
func TestReasonLabels(t *testing.T) {
	closes := map[CloseReason]string{
		CloseEOF: "eof", CloseIdle: "idle", CloseLimit: "limit", CloseFrameTooLarge: "frame_too_large",
		CloseError: "error", CloseWriteTimeout: "write_timeout", CloseShutdown: "shutdown",
		ClosePerIP: "per_ip_limit", CloseEvicted: "evicted",
	}
	if len(closes) != CloseReasons || len(Counts{}.Closed) != CloseReasons {
		t.Fatalf("%d close reasons named here, CloseReasons = %d", len(closes), CloseReasons)
	}
	for r, want := range closes {
		if got := r.String(); got != want {
			t.Errorf("CloseReason(%d) = %q, want %q", r, got, want)
		}
	}
	if got := CloseReason(CloseReasons).String(); got != "CloseReason(9)" {
		t.Errorf("out of range: %q", got)
	}
	errnos := map[AcceptErrno]string{AcceptEMFILE: "EMFILE", AcceptENFILE: "ENFILE", AcceptENOBUFS: "ENOBUFS", AcceptENOMEM: "ENOMEM", AcceptOther: "other"}
	if len(errnos) != AcceptErrnos || len(Counts{}.AcceptErrors) != AcceptErrnos {
		t.Fatalf("%d accept errnos named here, AcceptErrnos = %d", len(errnos), AcceptErrnos)
	}
	for e, want := range errnos {
		if got := e.String(); got != want {
			t.Errorf("AcceptErrno(%d) = %q, want %q", e, got, want)
		}
	}
	if got := AcceptErrno(AcceptErrnos).String(); got != "AcceptErrno(5)" {
		t.Errorf("out of range: %q", got)
	}
}

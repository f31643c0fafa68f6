package kafka

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in      string
		brokers []string
		topic   string
	}{
		{"kafka://127.0.0.1:9093/syslog", []string{"127.0.0.1:9093"}, "syslog"},
		{"kafka://k1,k2:19092,[::1]:9/a.b_c-d", []string{"k1:9092", "k2:19092", "[::1]:9"}, "a.b_c-d"},
		{"kafka://[2001:db8::1]/t", []string{"[2001:db8::1]:9092"}, "t"},
	}
	for _, c := range good {
		b, topic, err := ParseURL(c.in)
		if err != nil || !slices.Equal(b, c.brokers) || topic != c.topic {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", c.in, b, topic, err, c.brokers, c.topic)
		}
	}
	for _, in := range []string{
		"kafka://", "kafka://k1", "kafka://k1/", "kafka:///t", "kafka://k1,,k2/t", "kafka://k1:0/t",
		"kafka://k1:70000/t", "kafka://k1:x/t", "kafka://::1/t", "kafka://k1/t/u", "kafka://k1/..",
		"kafka://k1/" + strings.Repeat("a", 250), "kafka://u@k1/t", "file:///x", "kafka://[::1/t",
	} {
		if b, topic, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) = %q, %q; want an error", in, b, topic)
		}
	}
}

// FuzzParseURL: on any input ParseURL does not panic, and what it accepts
// is brokers that are host:port and a valid topic, which parse again to the
// same.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"kafka://127.0.0.1:9092/t", "kafka://a,b:1,[::1]/x.y", "kafka://[::1/t", "kafka://a:99999/t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		brokers, topic, err := ParseURL(s)
		if err != nil {
			return
		}
		if checkTopic(topic) != nil || len(brokers) == 0 {
			t.Fatalf("ParseURL(%q) accepted topic %q brokers %q", s, topic, brokers)
		}
		again := Scheme + strings.Join(brokers, ",") + "/" + topic
		b2, t2, err := ParseURL(again)
		if err != nil || !slices.Equal(b2, brokers) || t2 != topic {
			t.Fatalf("ParseURL(%q) = %q %q, but ParseURL(%q) = %q %q %v", s, brokers, topic, again, b2, t2, err)
		}
		for _, b := range brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				t.Fatalf("broker %q of %q: %v", b, s, err)
			}
		}
	})
}

package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Scheme starts a --sink value that names Kafka brokers and a topic.
const Scheme = "kafka://"

// DefaultPort is the broker port taken when a broker is named without one.
const DefaultPort = 9092

// ParseURL reads kafka://BROKER[,BROKER...]/TOPIC, each broker HOST[:PORT]
// (port 9092 if left out; an IPv6 address in brackets). The topic must be
// a valid Kafka topic name: 1 to 249 of [a-zA-Z0-9._-], not "." or "..".
// An error names what is wrong and the expected form.
func ParseURL(s string) (brokers []string, topic string, err error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return nil, "", fmt.Errorf("%q does not start with %s", s, Scheme)
	}
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return nil, "", errors.New("no topic: want kafka://BROKER[,BROKER...]/TOPIC")
	}
	if err := checkTopic(topic); err != nil {
		return nil, "", err
	}
	for b := range strings.SplitSeq(hosts, ",") {
		addr, err := parseBroker(b)
		if err != nil {
			return nil, "", err
		}
		brokers = append(brokers, addr)
	}
	return brokers, topic, nil
}

// parseBroker reads HOST[:PORT] and returns host:port.
func parseBroker(b string) (string, error) {
	if b == "" {
		return "", errors.New("empty broker: want kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC")
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		// No port: the whole is the host (an IPv6 address in brackets).
		host, port = b, strconv.Itoa(DefaultPort)
		if inner, ok := strings.CutPrefix(b, "["); ok {
			host, ok = strings.CutSuffix(inner, "]")
			if !ok || !strings.Contains(host, ":") {
				host = b // refused below
			}
		}
		if strings.ContainsAny(host, "[]") || strings.Contains(host, ":") && !strings.HasPrefix(b, "[") {
			return "", fmt.Errorf("broker %q: want HOST[:PORT], an IPv6 address in brackets ([::1]:9092)", b)
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@ \t") {
		return "", fmt.Errorf("broker %q: want HOST[:PORT]", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("broker %q: the port must be 1 to 65535", b)
	}
	return net.JoinHostPort(host, port), nil
}

// checkTopic checks a Kafka topic name.
func checkTopic(t string) error {
	if len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("topic %q: a Kafka topic name is 1 to 249 of a-z A-Z 0-9 . _ - (not . or ..)", t)
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic %q: a Kafka topic name is 1 to 249 of a-z A-Z 0-9 . _ - (not . or ..)", t)
		}
	}
	return nil
}

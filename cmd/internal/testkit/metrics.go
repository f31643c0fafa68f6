package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scrape fetches url (a /metrics page) and fails the test on an error or a
// status other than 200.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// Get is Scrape for polling loops: an error is returned, not fatal.
func Get(url string) (string, error) { return GetVia(http.DefaultClient, url) }

// GetVia is Get through c (a client whose dialer enters a network
// namespace, say): the body, or an error that includes a status other
// than 200.
func GetVia(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// ScrapeRetry fetches url on a fresh connection until it succeeds (a
// scraper retries) or 30 s pass: the page and how long it took.
func ScrapeRetry(t testing.TB, url string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < 30*time.Second {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), time.Since(start)
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no scrape of %s succeeded within 30s: %v", url, last)
	return "", 0
}

// SumMetric adds up every labelled series of one metric in a text
// exposition: the sum and how many series there were.
func SumMetric(t testing.TB, text, name string) (sum float64, series int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
		series++
	}
	return sum, series
}

// MetricSum sums the samples of name (labelled or not) whose line contains
// match ("" for every series).
func MetricSum(text, name, match string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if (strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ")) && strings.Contains(line, match) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// CloseAll closes every connection in *conns: deferred by a test that
// holds connections open against a server (`defer testkit.CloseAll(&held)`).
func CloseAll(conns *[]net.Conn) {
	for _, c := range *conns {
		c.Close()
	}
}

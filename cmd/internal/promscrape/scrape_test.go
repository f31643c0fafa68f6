package promscrape

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

const page = `# TYPE shardd_rx_packets_total counter
shardd_rx_packets_total{listener=":53",proto="udp",shard="0"} 5
shardd_rx_packets_total{listener=":53",proto="udp",shard="1"} 7
shardd_rx_packets_total{listener=":53",proto="tcp",shard="0"} 2
# TYPE shardd_socket_info gauge
shardd_socket_info{listener=":53",proto="udp",shard="0",inode="123"} 1
`

// TestSumByShard: counters add up per shard and per any coarser key;
// a gauge and a family the page lacks contribute nothing.
func TestSumByShard(t *testing.T) {
	f, err := Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got := SumBy(f, "shardd_rx_packets_total", ShardOf); len(got) != 3 || got[Shard{":53", "udp", "1"}] != 7 || got[Shard{":53", "tcp", "0"}] != 2 {
		t.Fatalf("by shard: %v", got)
	}
	byProto := SumBy(f, "shardd_rx_packets_total", func(m *dto.Metric) string { return Label(m, "proto") })
	if len(byProto) != 2 || byProto["udp"] != 12 || byProto["tcp"] != 2 {
		t.Fatalf("by proto: %v", byProto)
	}
	if got := SumBy(f, "shardd_socket_info", ShardOf); len(got) != 0 {
		t.Fatalf("a gauge summed as a counter: %v", got)
	}
	if got := SumBy(f, "shardd_nothing_total", ShardOf); got == nil || len(got) != 0 {
		t.Fatalf("a missing family: %v", got)
	}
	if m := f["shardd_socket_info"].GetMetric()[0]; Label(m, "inode") != "123" || Label(m, "cpu") != "" {
		t.Fatalf("labels of %v", m)
	}
	if _, err := Parse(strings.NewReader("shardd_rx_packets_total{ 1\n")); err == nil || !strings.HasPrefix(err.Error(), "parsing metrics: ") {
		t.Fatalf("a broken page: %v", err)
	}
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	f, err := Get(srv.URL+"/metrics", Timeout)
	if err != nil || len(f["shardd_rx_packets_total"].GetMetric()) != 3 {
		t.Fatalf("Get: %v %v", f, err)
	}
	if _, err := Get(srv.URL+"/other", Timeout); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a 404: %v", err)
	}
}

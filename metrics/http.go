package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the Prometheus text exposition of g at /metrics, "ok" at
// /healthz, and a live status page over the same series at / and /status
// (its data at /status.json).
// A collector that fails (the host-wide ones read /proc, which needs a
// descriptor) leaves out its own series only: at the descriptor limit the
// shard counters, shardd_tcp_accept_errors_total among them, are still
// served on a connection accepted before.
func Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/{$}", serveStatusPage)
	mux.HandleFunc("/status", serveStatusPage)
	mux.Handle("/status.json", statusJSON(g))
	return mux
}

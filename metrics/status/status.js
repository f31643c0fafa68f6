"use strict";
// shardd's status page: reads status.json (the shardd_* series of the
// metrics registry) every 2 s and draws it. Rates come from the last two
// samples. Every text goes in through textContent, never as markup.
(function () {
  var INTERVAL = 2000, WINDOW = 30; // seconds a rise stays flagged
  var hist = [], prev = null, cur = null, fetched = 0; // hist: the samples of the last WINDOW s, oldest first

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function series(d, name) {
    var f = d && d.metrics[name];
    return f ? f.samples : [];
  }
  function matches(l, m) {
    for (var k in m) if (l[k] !== m[k]) return false;
    return true;
  }
  // sum of the series of name whose labels match m; null if there is none.
  function sum(d, name, m) {
    var s = series(d, name), t = 0, n = 0;
    for (var i = 0; i < s.length; i++) {
      if (s[i].value !== null && matches(s[i].labels, m || {})) { t += s[i].value; n++; }
    }
    return n ? t : null;
  }
  function rate(name, m) {
    if (!prev || !cur || cur.time <= prev.time) return null;
    var a = sum(prev, name, m), b = sum(cur, name, m);
    if (a === null || b === null || b < a) return null;
    return (b - a) / (cur.time - prev.time);
  }
  function add() {
    var t = null;
    for (var i = 0; i < arguments.length; i++) if (arguments[i] !== null) t = (t || 0) + arguments[i];
    return t;
  }
  function labelValues(d, name, label) {
    var seen = {}, out = [];
    series(d, name).forEach(function (s) {
      var v = s.labels[label];
      if (v !== undefined && !seen.hasOwnProperty(v)) { seen[v] = true; out.push(v); }
    });
    return out;
  }

  // Formats: exact integers with thin-space groups; rates and bytes short.
  function int(v) {
    return v === null ? "–" : String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
  }
  function short(v, units, base) {
    var i = 0;
    while (Math.abs(v) >= base && i < units.length - 1) { v /= base; i++; }
    return (v < 10 && (i || v % 1) ? v.toFixed(1) : String(Math.round(v))) + units[i];
  }
  function perSec(v) { return v === null ? "–" : short(v, ["", "k", "M", "G"], 1000); }
  function bytes(v) { return v === null ? "–" : short(v, [" B", " KiB", " MiB", " GiB"], 1024); }
  function bytesPerSec(v) { return v === null ? "–" : bytes(v) + "/s"; }
  function duration(s) {
    if (s === null) return "–";
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m " + Math.floor(s % 60) + "s";
  }

  // facts is a list of [key, label, text, class].
  function facts(list) {
    var ul = el("ul", "facts");
    list.forEach(function (f) {
      var li = el("li");
      li.setAttribute("data-fact", f[0]);
      li.appendChild(el("span", null, f[1]));
      li.appendChild(el("b", f[3] || null, f[2]));
      ul.appendChild(li);
    });
    return ul;
  }
  // table draws rows (each {attrs, match}) with cols (each [key, label,
  // text(match), class(match)]); it stacks into cards on a narrow screen.
  function table(cols, rows) {
    var t = el("table", "stack"), head = el("tr"), body = el("tbody");
    cols.forEach(function (c) { head.appendChild(el("th", null, c[1])); });
    t.appendChild(el("thead")).appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      for (var a in r.attrs) tr.setAttribute("data-" + a, r.attrs[a]);
      cols.forEach(function (c) {
        var td = el("td", c[3] ? c[3](r.match) : null, c[2](r.match));
        td.setAttribute("data-col", c[0]);
        td.setAttribute("data-label", c[1]);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    var wrap = el("div", "scroll");
    wrap.appendChild(t);
    return wrap;
  }
  function counter(name) { return function (m) { return int(sum(cur, name, m)); }; }
  function perSecOf(name) { return function (m) { return perSec(rate(name, m)); }; }
  // rose: did the count go up within the window (a counter reset aside)?
  function rose(name, m) {
    var a = sum(hist[0], name, m), b = sum(cur, name, m);
    return a !== null && b !== null && b > a;
  }
  function warnIfRising(name) {
    return function (m) { return rose(name, m) ? "bad" : sum(cur, name, m) ? "warn" : null; };
  }
  function shardLabel(m) { return m.shard; }

  function shardCols(proto) {
    var cols = [
      ["shard", "shard", shardLabel],
      ["rx-rate", "rx/s", perSecOf("shardd_rx_packets_total")],
      ["rx", "received", counter("shardd_rx_packets_total")],
      ["tx-rate", "tx/s", perSecOf("shardd_tx_packets_total")],
      ["tx", "sent", counter("shardd_tx_packets_total")],
      ["rx-bytes-rate", "rx bytes/s", function (m) { return bytesPerSec(rate("shardd_rx_bytes_total", m)); }]
    ];
    if (proto === "tcp") {
      return cols.concat([
        ["tcp-active", "open conns", counter("shardd_tcp_active")],
        ["tcp-accepted", "accepted", counter("shardd_tcp_accepted_total")],
        ["tcp-held", "held", function (m) { return bytes(sum(cur, "shardd_tcp_held_bytes", m)); }],
        ["errors", "errors", function (m) { return int(add(sum(cur, "shardd_handler_errors_total", m), sum(cur, "shardd_tcp_accept_errors_total", m))); }]
      ]);
    }
    return cols.concat([
      ["drops", "kernel drops", counter("shardd_kernel_drops_total"), warnIfRising("shardd_kernel_drops_total")],
      ["queue", "queue", function (m) { return bytes(sum(cur, "shardd_rx_queue_bytes", m)); }],
      ["errors", "errors", function (m) {
        return int(add(sum(cur, "shardd_truncated_total", m), sum(cur, "shardd_handler_errors_total", m),
          sum(cur, "shardd_send_errors_total", m), sum(cur, "shardd_rx_errors_total", m)));
      }]
    ]);
  }

  function listeners() {
    var seen = {}, out = [];
    series(cur, "shardd_rx_packets_total").forEach(function (s) {
      var l = s.labels, k = JSON.stringify([l.listener, l.proto]);
      if (!seen[k]) { seen[k] = { listener: l.listener, proto: l.proto, shards: [] }; out.push(seen[k]); }
      seen[k].shards.push(l.shard);
    });
    out.forEach(function (g) { g.shards.sort(function (a, b) { return a - b; }); });
    // by listener as configured, UDP before TCP
    return out.sort(function (a, b) {
      return a.listener < b.listener ? -1 : a.listener > b.listener ? 1 : (a.proto === "tcp") - (b.proto === "tcp");
    });
  }

  function listenerCard(g) {
    var sec = el("section", "card listener"), lm = { listener: g.listener, proto: g.proto };
    sec.setAttribute("data-listener", g.listener);
    sec.setAttribute("data-proto", g.proto);
    sec.appendChild(el("h2", null, g.proto.toUpperCase() + " " + g.listener));
    var imb = sum(cur, "shardd_shard_imbalance", lm), foreign = sum(cur, "shardd_foreign_sockets", { listener: g.listener });
    var list = [
      ["shards", "shards", String(g.shards.length)],
      ["rx-rate", "rx/s", perSec(rate("shardd_rx_packets_total", lm))],
      ["tx-rate", "tx/s", perSec(rate("shardd_tx_packets_total", lm))],
      ["imbalance", "imbalance", imb === null ? "–" : imb.toFixed(2), imb > 1.5 ? "warn" : null],
      ["foreign", "foreign sockets", int(foreign), foreign ? "bad" : null]
    ];
    if (g.proto === "tcp") list.push(["tcp-active", "open conns", int(sum(cur, "shardd_tcp_active", lm))]);
    else list.push(["drops", "kernel drops", int(sum(cur, "shardd_kernel_drops_total", lm)), warnIfRising("shardd_kernel_drops_total")(lm)]);
    sec.appendChild(facts(list));
    sec.appendChild(table(shardCols(g.proto), g.shards.map(function (s) {
      return { attrs: { listener: g.listener, proto: g.proto, shard: s }, match: { listener: g.listener, proto: g.proto, shard: s } };
    })));
    return sec;
  }

  function overview() {
    var info = series(cur, "shardd_build_info")[0], start = sum(cur, "shardd_start_time_seconds");
    var failed = sum(cur, "shardd_upgrades_total", { result: "failed" }), host = sum(cur, "shardd_host_udp_rcvbuf_errors_total");
    return [facts([
      ["version", "version", info ? info.labels.version : "–"],
      ["uptime", "up", duration(start === null ? null : cur.time - start)],
      ["upgrades", "upgrades ok/failed/refused", [int(sum(cur, "shardd_upgrades_total", { result: "ok" })), int(failed),
        int(sum(cur, "shardd_upgrades_total", { result: "refused" }))].join(" / "), failed ? "warn" : null],
      ["host-rcvbuf-errors", "host UDP rcvbuf errors/s", perSec(rate("shardd_host_udp_rcvbuf_errors_total")), rose("shardd_host_udp_rcvbuf_errors_total") ? "bad" : null],
      ["guard-errors", "guard errors", int(sum(cur, "shardd_guard_errors_total")), sum(cur, "shardd_guard_errors_total") ? "warn" : null]
    ])];
  }

  function dnsCard() {
    if (!series(cur, "shardd_dns_queries_total").length && !series(cur, "shardd_dns_responses_total").length) return null;
    var sec = el("section", "card handler"), reloadErr = sum(cur, "shardd_dns_zone_reload_errors_total");
    sec.setAttribute("data-handler", "dns");
    sec.appendChild(el("h2", null, "DNS"));
    sec.appendChild(facts([
      ["queries-rate", "queries/s", perSec(rate("shardd_dns_queries_total"))],
      ["queries", "queries", int(sum(cur, "shardd_dns_queries_total"))],
      ["malformed", "malformed", int(sum(cur, "shardd_dns_malformed_total"))],
      ["truncated", "sent truncated", int(sum(cur, "shardd_dns_truncated_total"))],
      ["reloads", "zone reloads ok/failed", int(sum(cur, "shardd_dns_zone_reloads_total")) + " / " + int(reloadErr), reloadErr ? "warn" : null]
    ]));
    sec.appendChild(el("h3", null, "Responses by rcode"));
    sec.appendChild(table([
      ["rcode", "rcode", function (m) { return m.rcode; }],
      ["responses-rate", "per second", perSecOf("shardd_dns_responses_total")],
      ["responses", "responses", counter("shardd_dns_responses_total")]
    ], labelValues(cur, "shardd_dns_responses_total", "rcode").map(function (r) { return { attrs: { rcode: r }, match: { rcode: r } }; })));
    var zones = labelValues(cur, "shardd_dns_zone_serial", "zone");
    if (zones.length) {
      sec.appendChild(el("h3", null, "Zones"));
      sec.appendChild(table([
        ["zone", "zone", function (m) { return m.zone; }],
        ["serial", "serial", function (m) { return String(sum(cur, "shardd_dns_zone_serial", m)); }],
        ["records", "records", counter("shardd_dns_zone_records")]
      ], zones.map(function (z) { return { attrs: { zone: z }, match: { zone: z } }; })));
    }
    return sec;
  }

  // sinkState is the sink's state and its class: failing while its errors
  // rise, "errors" when the page has not seen long enough to tell.
  function sinkState(errs) {
    if (!errs) return ["ok", "ok"];
    if (rose("shardd_syslog_sink_errors_total")) return ["failing", "bad"];
    if (cur.time - hist[0].time >= 10) return ["ok, errors before", "warn"];
    return ["errors", "warn"];
  }

  function syslogCard() {
    var shards = labelValues(cur, "shardd_syslog_queue_depth", "shard");
    if (!shards.length) return null;
    var sec = el("section", "card handler"), errs = sum(cur, "shardd_syslog_sink_errors_total"), state = sinkState(errs);
    sec.setAttribute("data-handler", "syslog");
    sec.appendChild(el("h2", null, "Syslog"));
    var kinds = series(cur, "shardd_syslog_sink_errors_total").filter(function (s) { return s.value; })
      .map(function (s) { return s.labels.kind + " " + int(s.value); }).join(", ");
    sec.appendChild(facts([
      ["sink", "sink", state[0], state[1]],
      ["sink-errors", "sink errors", kinds || int(errs), errs ? "warn" : null],
      ["written-rate", "written/s", perSec(rate("shardd_syslog_written_total"))],
      ["queue-depth", "queued", int(sum(cur, "shardd_syslog_queue_depth"))],
      ["queue-buffer", "queue buffers", bytes(sum(cur, "shardd_syslog_queue_buffer_bytes"))],
      ["dropped", "dropped", int(sum(cur, "shardd_syslog_dropped_total")), warnIfRising("shardd_syslog_dropped_total")({})],
      ["reopens", "reopens", int(sum(cur, "shardd_syslog_sink_reopens_total"))]
    ]));
    sec.appendChild(table([
      ["shard", "shard", shardLabel],
      ["messages-rate", "messages/s", perSecOf("shardd_syslog_messages_total")],
      ["messages", "messages", counter("shardd_syslog_messages_total")],
      ["written", "written", counter("shardd_syslog_written_total")],
      ["dropped", "dropped", counter("shardd_syslog_dropped_total"), warnIfRising("shardd_syslog_dropped_total")],
      ["queue-depth", "queued", counter("shardd_syslog_queue_depth")]
    ], shards.map(function (s) { return { attrs: { shard: s }, match: { shard: s } }; })));
    return sec;
  }

  function render() {
    $("overview").replaceChildren.apply($("overview"), overview());
    $("listeners").replaceChildren.apply($("listeners"), listeners().map(listenerCard));
    $("handler").replaceChildren.apply($("handler"), [dnsCard(), syslogCard()].filter(Boolean));
    var st = $("state");
    st.className = cur.error ? "state warn" : "state";
    st.textContent = "updated " + new Date(cur.time * 1000).toLocaleTimeString() + (cur.error ? " · some series missing: " + cur.error : "");
    st.setAttribute("data-fetched", String(fetched));
  }

  function tick() {
    fetch("status.json", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) {
        prev = cur; cur = d; fetched++;
        hist.push(d);
        while (hist.length > 2 && cur.time - hist[1].time >= WINDOW) hist.shift();
        render();
      })
      .catch(function (e) {
        var st = $("state");
        st.className = "state bad";
        st.textContent = "stale: " + e.message + (cur ? " · last update " + new Date(cur.time * 1000).toLocaleTimeString() : "");
      })
      .finally(function () { setTimeout(tick, INTERVAL); });
  }
  tick();
})();

#!/usr/bin/env bash
# Side-by-side DNS answering rate and server CPU per query, interleaved:
#   testdata/bench/ab-dns.sh OLD_SHARDD NEW_SHARDD [ROUNDS]
# Each round runs OLD, NEW and Knot DNS (if knotd is installed), one after
# the other, each fresh on a loopback port, under 3 s of shardload echo with
# one A query (make build first: bin/shardload), one datagram per query
# (--gso off: with GSO shardd's UDP GRO takes a flow's queries in one
# receive, and the figures stop being comparable with Knot's). CPU per
# query is the server's utime+stime from /proc/PID/stat over the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1 new=$2 rounds=${3:-4}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
zones="--zone testdata/dns/example.com.zone --zone testdata/dns/2.0.192.in-addr.arpa.zone"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
  for srv in old new knot; do
    p=$(port)
    case $srv in
      knot)
        command -v knotd >/dev/null || continue
        printf 'server:\n  listen: 127.0.0.1@%s\n  rundir: %s\n  udp-workers: %s\n  background-workers: 1\ndatabase:\n  storage: %s\nzone:\n  - domain: example.com\n    file: %s/testdata/dns/example.com.zone\n    journal-content: none\n    zonefile-sync: -1\n' \
          "$p" "$dir" "$(nproc)" "$dir" "$PWD" > "$dir/knot.conf"
        knotd -c "$dir/knot.conf" >/dev/null 2>&1 & pid=$! ;;
      old) "$old" --handler dns $zones --log-level warn "127.0.0.1:$p" 2>/dev/null & pid=$! ;;
      new) "$new" --handler dns $zones --log-level warn "127.0.0.1:$p" 2>/dev/null & pid=$! ;;
    esac
    sleep 0.7
    c0=$(cpu $pid)
    out=$(bin/shardload --mode echo --senders 1 --payload testdata/dns/query-a-example.com.bin \
      --gso off --duration 3s --json --progress=false "127.0.0.1:$p" 2>/dev/null)
    c1=$(cpu $pid)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n=d["received"]
print("round %s %-4s %7.0f q/s  %.2f us CPU per query" % (sys.argv[2], sys.argv[3], n/d["duration_s"], (int(sys.argv[5])-int(sys.argv[4]))*1e6/int(sys.argv[6])/n))' \
      "$out" "$r" "$srv" "$c0" "$c1" "$hz"
  done
done

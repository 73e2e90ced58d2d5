#!/usr/bin/env bash
# plot.sh: PNG plots from one bench result file, with gnuplot.
# usage: bench/plot.sh bench/results/<stamp>.json OUTDIR
#   OUTDIR/throughput-acks-<acks>.png   produce MB/s by record size and partitions, per system,
#                                       next to loopback TCP at the same write size
#   OUTDIR/e2e-latency.png              end-to-end latency distribution at fixed offered rates
set -euo pipefail
RESULT=$1 OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed" >&2; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

# Tables for gnuplot: one row per (size, partitions), one column per system + tcp.
python3 - "$RESULT" "$TMP" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1])); tmp = sys.argv[2]
tcp = {r["write_size"]: r["MBps"] for r in rows if r.get("limit") == "tcp_loopback"}
prod = [r for r in rows if r.get("type") == "produce" and r["producers"] == 1 and r["ok"]]
systems = ["gregor", "kafka", "mock"]
for acks in sorted({r["acks"] for r in prod}):
    keys = sorted({(r["record_size"], r["partitions"]) for r in prod if r["acks"] == acks})
    with open(f"{tmp}/acks-{acks}.dat", "w") as f:
        f.write("# label " + " ".join(systems) + " tcp_same_write_size\n")
        for size, parts in keys:
            vals = []
            for s in systems:
                m = [r["MBps"] for r in prod if r["acks"] == acks and r["system"] == s
                     and r["record_size"] == size and r["partitions"] == parts]
                vals.append(str(max(m)) if m else "NaN")
            label = f"{size}B/{parts}p"
            f.write(f"\"{label}\" " + " ".join(vals) + f" {tcp.get(size, 'NaN')}\n")
with open(f"{tmp}/acks.list", "w") as f:
    f.write(" ".join(sorted({r["acks"] for r in prod})))
PY

for acks in $(cat "$TMP/acks.list"); do
    gnuplot <<GP
set terminal pngcairo size 1000,520 font ",10"
set output "$OUT/throughput-acks-$acks.png"
set title "Produce throughput, acks=$acks, 1 producer (gregor perf on librdkafka) - $(basename "$RESULT" .json)"
set ylabel "MB/s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left
set grid ytics
set yrange [0:*]
plot "$TMP/acks-$acks.dat" using 2:xtic(1) title "gregor", '' using 3 title "Apache Kafka 4.1", \
     '' using 4 title "librdkafka mock", '' using 5 title "loopback TCP, same write size (limit)"
GP
done

Q=$(ls "$(dirname "$RESULT")/$(basename "$RESULT" .json)"-e2e-*.quantiles 2>/dev/null || true)
if [ -n "$Q" ]; then
    plots=""
    for f in $Q; do
        name=$(basename "$f" .quantiles); name=${name#*-e2e-}
        sys=${name%%-*}; tag=${name#*-}
        label="$sys, $tag"
        dash=1; [ "$sys" = kafka ] && dash=2   # Kafka dashed: colours repeat after eight lines
        plots="$plots${plots:+, }\"$f\" using (1/(1-\$1)):2 with lines lw 2 dt $dash title \"$label\""
    done
    gnuplot <<GP
set terminal pngcairo size 1000,520 font ",10"
set output "$OUT/e2e-latency.png"
set title "End-to-end latency, 1 KB records, 1 partition, acks=1 (bench/e2e_latency) - $(basename "$RESULT" .json)" noenhanced
set logscale xy
set xlabel "percentile"
set ylabel "latency (us)"
set xtics ("0" 1, "50" 2, "90" 10, "99" 100, "99.9" 1000, "99.99" 10000)
set grid xtics ytics
set key top left
plot $plots
GP
fi
ls "$OUT"/*.png

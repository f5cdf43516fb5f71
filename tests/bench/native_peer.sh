#!/usr/bin/env bash
# native_peer.sh - `hearth bench` against a native llama.cpp `llama-bench` on the
# same GGUF files and thread counts, side by side in one run: pp and tg tok/s of
# each and the ratio Hearth / llama.cpp. For each file and thread count the two
# run back to back, so both see the same machine.
#
# The peer is a native llama.cpp build (DEVELOPERS.md, "Shared material"):
# LLAMA_BIN names its bin folder (llama-bench). Nothing of it is in this project.
# usage: tests/bench/native_peer.sh [-p 512] [-n 128] [-r 3] [-t 1,2] [-d 0] MODEL.gguf...
# Prints one table row per file and thread count, and with JSON=1 one JSON
# object per row instead.
set -euo pipefail
H=${HEARTH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin/hearth}
LLAMA_BIN=${LLAMA_BIN:?set LLAMA_BIN to a native llama.cpp build/bin folder}
P=512 N=128 R=3 TS=1,2 D=0
while getopts "p:n:r:t:d:" o; do
  case $o in
  p) P=$OPTARG ;; n) N=$OPTARG ;; r) R=$OPTARG ;; t) TS=$OPTARG ;; d) D=$OPTARG ;;
  *) echo "usage: $0 [-p P] [-n N] [-r R] [-t T1,T2] [-d D] MODEL..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-p P] [-n N] [-r R] [-t T1,T2] [-d D] MODEL..." >&2; exit 2; }
[ -x "$LLAMA_BIN/llama-bench" ] || { echo "no llama-bench in $LLAMA_BIN" >&2; exit 2; }
export LD_LIBRARY_PATH="$LLAMA_BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ "${JSON:-0}" = 1 ] || printf '%-28s %2s %9s %9s %6s %9s %9s %6s\n' file t "pp hearth" "pp llama" ratio "tg hearth" "tg llama" ratio
for m in "$@"; do
  for t in ${TS//,/ }; do
    h=$("$H" bench -m "$m" -p "$P" -n "$N" -r "$R" -t "$t" -d "$D" --bw-mib 0 --json 2>/dev/null)
    l=$("$LLAMA_BIN/llama-bench" -m "$m" -p "$P" -n "$N" -r "$R" -t "$t" -d "$D" -o json 2>/dev/null)
    python3 - "$m" "$t" "$P" "$N" "$D" "$h" "$l" <<'EOF'
import json, os, sys
m, t, P, N, D, h, l = sys.argv[1:]
P, N, D = int(P), int(N), int(D)
hj = [json.loads(x) for x in h.splitlines() if x.strip().startswith("{")]
lj = json.loads(l)
def hearth(kind):
    for o in hj:
        r = o.get(kind + "_tok_s")
        if isinstance(r, dict): return r["mean"]
    return None
def llama(np, ng):
    for o in lj:
        if o["n_prompt"] == np and o["n_gen"] == ng: return o["avg_ts"]
    return None
row = {"file": os.path.basename(m), "threads": int(t), "depth": D,
       "pp_hearth": hearth("pp"), "pp_llama": llama(P, 0) if P else None,
       "tg_hearth": hearth("tg"), "tg_llama": llama(0, N) if N else None}
for k in ("pp", "tg"):
    a, b = row[k + "_hearth"], row[k + "_llama"]
    row[k + "_ratio"] = round(a / b, 2) if a and b else None
if os.environ.get("JSON") == "1":
    print(json.dumps(row))
else:
    f = lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, float) and v > 5 else str(v))
    print(f"{row['file'][:28]:<28} {t:>2} {f(row['pp_hearth']):>9} {f(row['pp_llama']):>9} {f(row['pp_ratio']):>6} "
          f"{f(row['tg_hearth']):>9} {f(row['tg_llama']):>9} {f(row['tg_ratio']):>6}")
EOF
  done
done

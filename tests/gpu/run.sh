#!/usr/bin/env bash
# tests/gpu/run.sh - the CUDA backend's checks on a machine with an NVIDIA GPU.
#
# Owner: the CUDA backend (backends/cuda). Two modes:
#
#   tests/gpu/run.sh --pack   (HERE, on the build machine, no GPU needed)
#       Builds the CUDA binaries for sm_90 in build-gpu/ and packs what the GPU
#       machine needs into build-gpu-carry/ (ignored by git via /build*/):
#       bin/ (hearth, test_cuda_ops, cuda_bw_probe), lib/ (the shared libraries
#       they load that a bare CUDA image may lack: sqlite3, yaml, cjson,
#       microhttpd + gnutls, ncursesw; never glibc) and models/ (sample GGUFs
#       from ../shared/models, which does not travel).
#
#   tests/gpu/run.sh          (THERE, on the GPU machine)
#       Uses build-gpu-carry/ when present (the GPU image lacks the Debian -dev
#       packages and the top-level CMakeLists requires them, so building there
#       only works where they are installed); otherwise builds from source.
#       Then: 1. every kernel's parity test (test_cuda_ops: vs the CPU backend
#       and vs the reference kernels, random data, per-type tolerances, outputs
#       NaN-poisoned first; GEMM, split-K attention, graph replay vs eager);
#       2. greedy generation on the sample models, CUDA tokens vs CPU tokens
#       (and, on one model, with graphs off and with the reference kernels);
#       2b. `hearth embed --backend cuda` on the encoder test shapes (packed in
#       encoders/ by --pack) vs the CPU and llama.cpp's vectors (tests/data/embed);
#       3. a device-to-device copy bandwidth probe; 4. `hearth bench` tg/pp on
#       synthetic models (llama3.2-1b and llama3-8b shapes in q4_0, q8_0, f16),
#       tg as achieved bandwidth (weights + KV bytes per token x tok/s) and as
#       a fraction of the probe, pp as TFLOP/s and as a fraction of the card's
#       dense F16 tensor peak (PEAK_TFLOPS overrides the table below); then tg
#       of llama3-8b q4_0 with graphs off and with the reference kernels;
#       5. the Vulkan backend on the same card, if the machine has a Vulkan
#       driver for it (the loader travels in lib/; the driver cannot): greedy
#       tokens vs the CPU and tg/pp of llama3.2-1b q4_0 -- or one line saying
#       there is no Vulkan driver.
#       About 7-8 minutes on an H100 (each step is time-boxed; shapes that
#       would not fit are skipped and say so).
#       Results go to $OUT (or ./gpu-results): summary.txt, parity.log,
#       greedy.log, embed.log, bench.jsonl, bench.err. Exit status: non-zero if
#       parity, a greedy check or an embedding check failed.
#
# How to run it: on the build machine `bash tests/gpu/run.sh --pack`; then copy
# the checkout with build-gpu-carry/ (ignored by git, so copy it explicitly)
# to the GPU machine and there, from the checkout root, `bash tests/gpu/run.sh`
# (allow about 10 minutes). Set OUT to collect the results elsewhere.
# Env: SKIP_BENCH=1 skips step 4; BENCH_SHAPES="llama3.2-1b:q4_0 ..." overrides it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CARRY=$ROOT/build-gpu-carry

# ------------------------------------------------------------ --pack (here)
if [ "${1:-}" = "--pack" ]; then
    set -e
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_CUDA=ON -DHEARTH_CUDA_ARCHS=90 \
        -DHEARTH_VULKAN=ON >/dev/null
    cmake --build build-gpu -j"${JOBS:-2}" --target hearth-cli test_cuda_ops cuda_bw_probe
    rm -rf "$CARRY"
    mkdir -p "$CARRY/bin" "$CARRY/lib" "$CARRY/models"
    cp build-gpu/bin/hearth build-gpu/bin/test_cuda_ops build-gpu/bin/cuda_bw_probe "$CARRY/bin/"
    for b in "$CARRY"/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
        grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so' |
        while read -r lib; do cp -L "$lib" "$CARRY/lib/"; done
    SHARED=${HEARTH_SHARED:-$ROOT/../shared}
    for m in stories260K-q8_0 stories260K-f16 stories260K-q4_k_m hearth-kjv-llama-q4_0 hearth-kjv-llama-q8_0 \
        hearth-kjv-llama-f16 hearth-kjv-llama-q6_k hearth-kjv-qwen2-q8_0 \
        hearth-kjv-qwen3-q4_0 hearth-kjv-qwen3-f16 \
        hearth-kjv-llama-q4_1 hearth-kjv-llama-q5_0 hearth-kjv-llama-q5_1 hearth-kjv-llama-q5_k; do
        cp "$SHARED/models/$m.gguf" "$CARRY/models/"
    done
    # the encoder test shapes (their vocabulary comes from ../shared, which does not travel)
    mkdir -p "$CARRY/encoders"
    for st in bert-test:f32 nomic-test:f32 bert-rerank-test:f32 bert-test:q8_0 nomic-test:q4_k; do
        build-gpu/bin/hearth mkmodel --shape "${st%%:*}" --type "${st##*:}" --seed 42 \
            -o "$CARRY/encoders/${st%%:*}-${st##*:}.gguf" >/dev/null
    done
    git describe --always --dirty --abbrev=12 >"$CARRY/commit" 2>/dev/null || true
    du -sh "$CARRY"
    echo "packed; on the GPU machine, with build-gpu-carry/ copied along: bash tests/gpu/run.sh"
    exit 0
fi

# ------------------------------------------------------------ on the GPU machine
RES=${OUT:-$ROOT/gpu-results}
mkdir -p "$RES"
SUMMARY=$RES/summary.txt
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }

if [ -x "$CARRY/bin/hearth" ]; then
    BIN=$CARRY/bin
    export LD_LIBRARY_PATH=$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    MODELS=$CARRY/models
    say "binaries: carried build (commit $(cat "$CARRY/commit" 2>/dev/null || echo ?))"
else
    say "binaries: building from source (needs the -dev packages of CMakeLists.txt)"
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_CUDA=ON -DHEARTH_CUDA_ARCHS=90 \
        -DHEARTH_VULKAN=AUTO >"$RES/build.log" 2>&1 &&
        cmake --build build-gpu -j"$(nproc)" --target hearth-cli test_cuda_ops cuda_bw_probe >>"$RES/build.log" 2>&1 ||
        { say "build failed (see build.log)"; exit 1; }
    BIN=$ROOT/build-gpu/bin
    MODELS=${HEARTH_SHARED:-$ROOT/../shared}/models
fi
say "date: $(date -u +%Y-%m-%dT%H:%MZ)  git: $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi missing')"

# ---- 1. kernel parity
say "== 1. kernel parity (test_cuda_ops)"
timeout 180 "$BIN/test_cuda_ops" >"$RES/parity.log" 2>&1
PARITY=$?
grep -E "FAIL|CHECK failed|cuda_ops:" "$RES/parity.log" | head -40 | tee -a "$SUMMARY"
say "parity exit status: $PARITY  ($(elapsed)s)"

# ---- 2. greedy generation, CUDA vs CPU tokens
say "== 2. greedy generation (32 tokens), cuda vs cpu"
: >"$RES/greedy.log"
GREEDY_FAIL=0
tokens_of() { python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["tokens"])))' 2>/dev/null; }
for m in "$MODELS"/*.gguf; do
    [ -f "$m" ] || continue
    name=$(basename "$m" .gguf)
    args=(run -m "$m" -p "In the beginning God created" -n 32 --temp 0 --ignore-eos --no-prefix-cache --json -c 256)
    cpu=$(timeout 60 "$BIN/hearth" "${args[@]}" --backend cpu 2>>"$RES/greedy.log" | tokens_of)
    gpu=$(timeout 60 "$BIN/hearth" "${args[@]}" --backend cuda 2>>"$RES/greedy.log" | tokens_of)
    echo "$name cpu: $cpu" >>"$RES/greedy.log"
    echo "$name gpu: $gpu" >>"$RES/greedy.log"
    verdict=$(python3 - "$cpu" "$gpu" <<'EOF'
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
if not b: print("FAIL (no cuda output)"); sys.exit()
if a == b: print("identical (%d tokens)" % len(a)); sys.exit()
i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
print(("WARN" if i >= 8 else "FAIL") + " diverges at token %d of %d" % (i, len(a)))
EOF
)
    say "  $name: $verdict"
    case $verdict in FAIL*) GREEDY_FAIL=1 ;; esac
done
# the same tokens with graphs off and with the reference kernels (one model)
m=$MODELS/hearth-kjv-llama-q4_0.gguf
if [ -f "$m" ]; then
    args=(run -m "$m" -p "In the beginning God created" -n 32 --temp 0 --ignore-eos --no-prefix-cache --json -c 256)
    base=$(timeout 60 "$BIN/hearth" "${args[@]}" --backend cuda 2>>"$RES/greedy.log" | tokens_of)
    for envset in HEARTH_CUDA_GRAPHS=0 HEARTH_CUDA_KERNELS=simple; do
        other=$(env "$envset" timeout 60 "$BIN/hearth" "${args[@]}" --backend cuda 2>>"$RES/greedy.log" | tokens_of)
        if [ -n "$base" ] && [ "$base" = "$other" ]; then v="identical"; else v="FAIL (differs)"; GREEDY_FAIL=1; fi
        say "  hearth-kjv-llama-q4_0 cuda vs cuda $envset: $v"
    done
fi
say "($(elapsed)s)"

# ---- 2b. encoder embeddings: `hearth embed --backend cuda` vs the CPU and vs llama.cpp
say "== 2b. encoder embeddings (bert, nomic-bert), cuda vs cpu and llama.cpp (tests/data/embed)"
EMBED_FAIL=0
ENC=$CARRY/encoders
if [ ! -d "$ENC" ]; then # built from source: make the shapes here
    ENC=$RES/encoders
    mkdir -p "$ENC"
    for st in bert-test:f32 nomic-test:f32 bert-rerank-test:f32 bert-test:q8_0 nomic-test:q4_k; do
        timeout 60 "$BIN/hearth" mkmodel --shape "${st%%:*}" --type "${st##*:}" --seed 42 \
            -o "$ENC/${st%%:*}-${st##*:}.gguf" >/dev/null 2>>"$RES/embed.log"
    done
fi
: >>"$RES/embed.log"
for spec in bert-test-cls:bert-test-f32 bert-test-mean:bert-test-f32:mean nomic-test-mean:nomic-test-f32 \
    nomic-test-last:nomic-test-f32:last bert-rerank-test:bert-rerank-test-f32 bert-test-q8_0:bert-test-q8_0 \
    nomic-test-q4_k:nomic-test-q4_k; do
    IFS=: read -r c mf pool <<<"$spec"
    flags=()
    [ -n "$pool" ] && flags=(--pooling "$pool")
    mapfile -t inputs < <(python3 -c "import json,sys; [print(x) for x in json.load(open(sys.argv[1]))['inputs']]" \
        "$ROOT/tests/data/embed/$c.json")
    v="ok"
    for be in cpu cuda; do
        timeout 60 "$BIN/hearth" embed -m "$ENC/$mf.gguf" --json --backend "$be" "${flags[@]}" "${inputs[@]}" \
            >"$RES/embed-$c-$be.json" 2>>"$RES/embed.log" || v="FAIL ($be run failed, see embed.log)"
    done
    if [ "$v" = ok ]; then
        python3 "$ROOT/tests/cli/embed_compare.py" "$ROOT/tests/data/embed/$c.json" "$RES/embed-$c-cuda.json" \
            >>"$RES/embed.log" 2>&1 || v="FAIL vs llama.cpp"
        python3 "$ROOT/tests/cli/embed_compare.py" "$RES/embed-$c-cpu.json" "$RES/embed-$c-cuda.json" \
            >"$RES/embed-cmp.txt" 2>&1 || v="FAIL vs cpu"
        cat "$RES/embed-cmp.txt" >>"$RES/embed.log"
        [ "$v" = ok ] && v="ok, vs cpu $(grep -o 'max abs error [0-9.e+-]*' "$RES/embed-cmp.txt" | sort -k4 -g | tail -1)"
    fi
    say "  $c: $v"
    case $v in FAIL*) EMBED_FAIL=1 ;; esac
done
say "($(elapsed)s)"

# ---- 3. bandwidth probe
say "== 3. device-to-device copy bandwidth"
BWLINE=$(timeout 60 "$BIN/cuda_bw_probe" 2>&1)
say "  $BWLINE"
BW=$(echo "$BWLINE" | sed -n 's/.*: \([0-9.]*\) GB\/s.*/\1/p')

# ---- 4. bench on synthetic models
# Dense F16 tensor-core peak (TFLOP/s, no sparsity) of the card, for the pp fraction.
peak_tflops() {
    case "$1" in
    *H200*) echo 989 ;;
    *H100*PCIe*) echo 756 ;;
    *H100*NVL*) echo 835 ;;
    *H100*) echo 989 ;;
    *A100*) echo 312 ;;
    *L40S*) echo 362 ;;
    *) echo 0 ;;
    esac
}
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
PEAK=${PEAK_TFLOPS:-$(peak_tflops "$GPU_NAME")}
# bench_one SHAPE TYPE LABEL [ENV=VALUE|-] [N_PROMPT] [N_GEN]: one run, one summary line, JSON appended.
bench_one() {
    local shape=$1 type=$2 label=$3 envset=${4:--} np=${5:-512} ng=${6:-64}
    local f=$SYN/$shape-$type.gguf t2 line
    [ "$envset" = - ] && envset=HEARTH_BENCH_RUN=1
    t2=$(date +%s)
    line=$(env "$envset" timeout 150 "$BIN/hearth" bench -m "$f" -p "$np" -n "$ng" -r 2 --json --backend cuda \
        --bw-mib 0 2>>"$RES/bench.err" | tail -1)
    echo "$line" >>"$RES/bench.jsonl"
    say "  $label: $(python3 - "$line" "${BW:-0}" "$shape" "$PEAK" "$np" <<'EOF'
import json, sys
try:
    r = json.loads(sys.argv[1])
except Exception:
    print("bench failed (see bench.err)"); sys.exit()
bw, shape, peak, np_ = float(sys.argv[2] or 0), sys.argv[3], float(sys.argv[4] or 0), int(sys.argv[5])
# dim, layers, heads, kv heads, head_dim, ffn: the matmul FLOPs of one prompt token
dims = {"llama3-8b": (4096, 32, 32, 8, 128, 14336), "llama3.2-1b": (2048, 16, 32, 8, 64, 8192)}
out = []
if "pp_tok_s" in r and np_ > 0 and shape in dims:
    d, L, H, Hkv, hd, ffn = dims[shape]
    per_layer = d * H * hd + 2 * d * Hkv * hd + H * hd * d + 3 * d * ffn
    flops = 2 * L * per_layer + 4 * L * H * hd * (np_ / 2)  # + attention at the average context
    pp = r["pp_tok_s"]["mean"]
    tf = pp * flops / 1e12
    frac = " = %.0f%% of %.0f dense F16" % (100 * tf / peak, peak) if peak else ""
    out.append("pp %.0f tok/s = %.0f TFLOP/s%s" % (pp, tf, frac))
if "tg_tok_s" in r:
    tg = r["tg_tok_s"]["mean"]
    got = r["bytes_per_token"] * tg / 1e9
    frac = " = %.0f%% of %.0f GB/s copy" % (100 * got / bw, bw) if bw else ""
    out.append("tg %.1f tok/s, %.0f GB/s streamed%s" % (tg, got, frac))
print("; ".join(out) if out else "no figures (see bench.jsonl)")
EOF
)  (bench $(($(date +%s) - t2))s)"
}
if [ "${SKIP_BENCH:-0}" != 1 ]; then
    say "== 4. hearth bench (pp 512, tg 64, 2 reps) on synthetic models; card: ${GPU_NAME:-?}, F16 peak ${PEAK} TFLOP/s"
    SYN=${TMPDIR:-/tmp}/hearth-synth
    mkdir -p "$SYN"
    : >"$RES/bench.jsonl"
    for st in ${BENCH_SHAPES:-llama3.2-1b:q4_0 llama3-8b:q4_0 llama3-8b:q8_0 llama3-8b:f16 llama3.2-1b:f16}; do
        shape=${st%%:*} type=${st##*:}
        if [ "$(elapsed)" -gt "${BENCH_UNTIL:-380}" ]; then say "  $shape $type: skipped (time budget)"; continue; fi
        f=$SYN/$shape-$type.gguf
        t1=$(date +%s)
        timeout 150 "$BIN/hearth" mkmodel --shape "$shape" --type "$type" -o "$f" >/dev/null 2>>"$RES/bench.err" ||
            { say "  $shape $type: mkmodel failed"; rm -f "$f"; continue; }
        say "  ($shape $type: mkmodel $(($(date +%s) - t1))s)"
        bench_one "$shape" "$type" "$shape $type"
        if [ "$shape:$type" = llama3-8b:q4_0 ] && [ "$(elapsed)" -lt "${BENCH_UNTIL:-380}" ]; then
            bench_one "$shape" "$type" "$shape $type, graphs off" HEARTH_CUDA_GRAPHS=0 0 64
            bench_one "$shape" "$type" "$shape $type, reference kernels" HEARTH_CUDA_KERNELS=simple 0 32
        fi
        rm -f "$f"
    done
fi

# ---- 5. the Vulkan backend (backends/vulkan) on this card, when the machine has a driver
say "== 5. Vulkan on this GPU"
if ! "$BIN/hearth" --version 2>/dev/null | grep -q vulkan; then
    say "  this build has no Vulkan backend"
elif ! timeout 60 "$BIN/hearth" run -m "$MODELS/hearth-kjv-llama-q8_0.gguf" -p "In" -n 1 --temp 0 --backend vulkan \
    --no-prefix-cache >/dev/null 2>"$RES/vulkan.err"; then
    say "  no usable Vulkan driver on this machine: $(tail -1 "$RES/vulkan.err")"
    say "  (ICD files: $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' '))"
else
    grep "^hearth: backend" "$RES/vulkan.err" | sed 's/^/  /' | tee -a "$SUMMARY" >/dev/null
    for m in hearth-kjv-llama-q8_0 hearth-kjv-llama-q4_0 hearth-kjv-llama-f16; do
        args=(run -m "$MODELS/$m.gguf" -p "In the beginning God created" -n 32 --temp 0 --ignore-eos --no-prefix-cache --json -c 256)
        cpu=$(timeout 60 "$BIN/hearth" "${args[@]}" --backend cpu 2>/dev/null | tokens_of)
        vk=$(timeout 60 "$BIN/hearth" "${args[@]}" --backend vulkan 2>>"$RES/vulkan.err" | tokens_of)
        if [ -n "$vk" ] && [ "$cpu" = "$vk" ]; then say "  $m vulkan vs cpu: identical"; else say "  $m vulkan vs cpu: differs"; fi
    done
    if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$(elapsed)" -lt "${VULKAN_UNTIL:-470}" ]; then
        SYN=${TMPDIR:-/tmp}/hearth-synth
        mkdir -p "$SYN"
        f=$SYN/llama3.2-1b-q4_0.gguf
        timeout 60 "$BIN/hearth" mkmodel --shape llama3.2-1b --type q4_0 -o "$f" >/dev/null 2>>"$RES/vulkan.err"
        line=$(timeout 120 "$BIN/hearth" bench -m "$f" -p 512 -n 64 -r 1 --json --backend vulkan --bw-mib 0 \
            2>>"$RES/vulkan.err" | tail -1)
        echo "$line" >>"$RES/bench.jsonl"
        say "  llama3.2-1b q4_0 on vulkan: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("pp %.0f tok/s, tg %.1f tok/s on %s" % (r["pp_tok_s"]["mean"], r["tg_tok_s"]["mean"], r.get("device","?")))' "$line" 2>/dev/null || echo "bench failed (see vulkan.err)")"
        rm -f "$f"
    else
        say "  vulkan bench skipped (time budget)"
    fi
fi
say "total $(elapsed)s"
[ "$PARITY" -ne 0 ] && exit "$PARITY"
[ "$EMBED_FAIL" -ne 0 ] && exit 1
exit "$GREEDY_FAIL"

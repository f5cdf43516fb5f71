#!/usr/bin/env python3
"""serve_embed_check.py - checks test_serve_embed.sh makes on the replies of
`hearth serve`'s embedding routes against llama.cpp's vectors
(tests/data/embed/CASE.json): cosine >= 0.9999 and max abs error <= 1e-3 per
component (as tests/cli/embed_compare.py), after pulling the vectors out of
each API's reply shape.

usage: serve_embed_check.py SHAPE REF.json REPLY.json [--unnormalized] [--from I]
SHAPE: openai ({"data":[{"embedding"}]}, floats or base64), ollama
({"embeddings"}), ollama-legacy ({"embedding"}: one vector), llama
([{"embedding":[[...]]}]). --unnormalized: compare the direction only.
--from I: the reply holds the reference's vectors I, I+1, ...
Prints one line per vector; exit 1 on any failure.
"""
import base64
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from embed_compare import cos  # noqa: E402  (the same measure as the CLI parity test)


def vectors(shape, reply):
    if shape == "openai":
        out = []
        for d in sorted(reply["data"], key=lambda d: d["index"]):
            e = d["embedding"]
            if isinstance(e, str):
                raw = base64.b64decode(e)
                e = list(struct.unpack("<%df" % (len(raw) // 4), raw))
            out.append(e)
        return out
    if shape == "ollama":
        return reply["embeddings"]
    if shape == "ollama-legacy":
        return [reply["embedding"]]
    if shape == "llama":
        return [d["embedding"][0] for d in sorted(reply, key=lambda d: d["index"])]
    raise SystemExit("unknown shape " + shape)


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else v


def main():
    shape, ref_path, reply_path = sys.argv[1:4]
    unnorm = "--unnormalized" in sys.argv
    ref = json.load(open(ref_path))["embeddings"]
    got = vectors(shape, json.load(open(reply_path)))
    first = int(sys.argv[sys.argv.index("--from") + 1]) if "--from" in sys.argv else 0
    ref = ref[first:first + len(got)]
    ok = len(ref) == len(got) and len(got) > 0
    if not ok:
        print("FAIL: %d vectors for %d references" % (len(got), len(ref)))
    for i, (r, g) in enumerate(zip(ref, got)):
        if unnorm:
            g = unit(g)
        c = cos(r, g)
        m = max(abs(a - b) for a, b in zip(r, g)) if len(r) == len(g) else float("inf")
        good = len(r) == len(g) and c >= 0.9999 and m <= 1e-3
        ok = ok and good
        print("%s vector %d: dim %d/%d cos %.6f max abs %.2e" % ("ok" if good else "FAIL", first + i, len(g), len(r), c, m))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

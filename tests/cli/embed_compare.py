#!/usr/bin/env python3
"""embed_compare.py - compare `hearth embed --json` output with a reference.

usage: embed_compare.py REF.json HEARTH.json [--exact OTHER.json]
REF.json is tests/data/embed/CASE.json (llama.cpp's vectors). Every vector
must have the reference's length, cosine similarity >= 0.9999 (skipped for
1-component rank scores) and max abs error <= 1e-3 per component (rank
scores: <= 1e-4). With --exact OTHER.json, HEARTH.json must also equal
OTHER.json (another hearth run, e.g. --alone against batched) within 1e-6.
Prints one line per vector; exit 1 on any failure.
"""
import json
import math
import sys


def cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def main():
    ref = json.load(open(sys.argv[1]))["embeddings"]
    got = json.load(open(sys.argv[2]))["embeddings"]
    other = json.load(open(sys.argv[4]))["embeddings"] if len(sys.argv) > 4 and sys.argv[3] == "--exact" else None
    ok = len(ref) == len(got)
    if not ok:
        print("FAIL: %d vectors, reference has %d" % (len(got), len(ref)))
    for i, (r, g) in enumerate(zip(ref, got)):
        if len(r) != len(g):
            print("FAIL vector %d: %d components, reference has %d" % (i, len(g), len(r)))
            ok = False
            continue
        err = max(abs(x - y) for x, y in zip(r, g))
        c = cos(r, g) if len(r) > 1 else 1.0
        tol = 1e-4 if len(r) == 1 else 1e-3
        good = c >= 0.9999 and err <= tol
        print("%s vector %d: cosine %.7f, max abs error %.2e" % ("ok  " if good else "FAIL", i, c, err))
        ok = ok and good
    if other is not None:
        d = max(abs(x - y) for a, b in zip(got, other) for x, y in zip(a, b))
        same = len(other) == len(got) and d <= 1e-6
        print("%s batched vs alone: max difference %.2e" % ("ok  " if same else "FAIL", d))
        ok = ok and same
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""imatrix_compare.py - read two imatrix GGUF files (llama.cpp's format, as
`hearth imatrix` and llama-imatrix write them) and compare them.

usage: imatrix_compare.py A.gguf B.gguf [--max-rel X] [--json]
Checks that both have the same entries (weight names), shapes, counts and
chunk metadata, and that the mean x^2 per channel (in_sum2 / counts) agrees:
prints the largest and the mean relative error over all channels; exits 1
when an entry or a count differs or the max relative error is above X
(default 0.01). Standard library only (no numpy)."""
import json
import struct
import sys


def read_gguf(path):
    with open(path, "rb") as f:
        buf = f.read()
    off = 0

    def take(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal off
        n = take("Q")
        s = buf[off:off + n].decode("utf-8")
        off += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    magic = buf[:4]
    if magic != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    off = 4
    _version, n_t, n_kv = take("I"), take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_t):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        ty, o = take("I"), take("Q")
        infos.append((name, ne, ty, o))
    align = kv.get("general.alignment", 32)
    data = (off + align - 1) // align * align
    tensors = {}
    for name, ne, ty, o in infos:
        if ty != 0:
            raise SystemExit(f"{path}: tensor {name} is not F32")
        n = 1
        for d in ne:
            n *= d
        tensors[name] = (ne, struct.unpack_from(f"<{n}f", buf, data + o))
    return kv, tensors, [i[0] for i in infos]


def entries(tensors):
    out = {}
    for name, (ne, vals) in tensors.items():
        if name.endswith(".in_sum2"):
            base = name[: -len(".in_sum2")]
            cne, counts = tensors[base + ".counts"]
            out[base] = (ne, vals, counts)
    return out


def main():
    args = sys.argv[1:]
    max_rel = 0.01
    as_json = "--json" in args
    if "--max-rel" in args:
        max_rel = float(args[args.index("--max-rel") + 1])
    files = [a for a in args if a.endswith(".gguf") or "/" in a][:2]
    (ka, ta, _), (kb, tb, _) = read_gguf(files[0]), read_gguf(files[1])
    ea, eb = entries(ta), entries(tb)
    problems = []
    if sorted(ea) != sorted(eb):
        problems.append(f"entries differ: only in A {sorted(set(ea) - set(eb))}, only in B {sorted(set(eb) - set(ea))}")
    for k in ("imatrix.chunk_count", "imatrix.chunk_size"):
        if ka.get(k) != kb.get(k):
            problems.append(f"{k}: {ka.get(k)} vs {kb.get(k)}")
    worst, worst_name, total, n = 0.0, "", 0.0, 0
    for name in sorted(set(ea) & set(eb)):
        nea, va, ca = ea[name]
        neb, vb, cb = eb[name]
        if nea != neb or list(ca) != list(cb):
            problems.append(f"{name}: shape {nea}/{neb} or counts {list(ca)}/{list(cb)} differ")
            continue
        per = len(va) // len(ca)
        for i, (x, y) in enumerate(zip(va, vb)):
            c = ca[i // per] or 1.0
            mx, my = x / c, y / c
            rel = abs(mx - my) / max(abs(mx), abs(my), 1e-30)
            total += rel
            n += 1
            if rel > worst:
                worst, worst_name = rel, f"{name}[{i}]"
    res = {"entries": len(ea), "channels": n, "max_rel": worst, "max_rel_at": worst_name,
           "mean_rel": total / n if n else 0.0, "problems": problems}
    if as_json:
        print(json.dumps(res))
    else:
        print(f"{len(ea)} entries, {n} channels: max relative error {worst:.3e} at {worst_name}, "
              f"mean {res['mean_rel']:.3e}")
        for p in problems:
            print("problem:", p)
    sys.exit(1 if problems or worst > max_rel else 0)


if __name__ == "__main__":
    main()

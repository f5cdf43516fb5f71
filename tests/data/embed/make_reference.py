#!/usr/bin/env python3
"""make_reference.py - regenerate the llama.cpp reference embeddings in this folder.

For each case: `hearth mkmodel` writes the small test shape (f32, seed 42,
deterministic), native llama.cpp `llama-embedding` embeds the case's inputs
(one per line, all in one batch), and the vectors go to CASE.json together
with the inputs and the exact commands. tests/cli/test_embed.sh regenerates
the models in the build dir and compares Hearth's vectors with these.

usage: make_reference.py HEARTH_BIN LLAMA_EMBEDDING_BIN WORKDIR
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Héllo, WÖRLD! Accents and UPPER case are folded by WordPiece.",
    "embeddings",
    "A longer input sentence that has quite a few more tokens in it than the others, so that the "
    "packed batch holds sequences of clearly different lengths.",
    "what is the capital of france?",
]
PAIRS = [
    "what is a panda?\tThe giant panda is a bear species endemic to China.",
    "what is a panda?\thi",
    "how do I bake bread?\tMix flour, water, salt and yeast, knead, let it rise, then bake.",
]
# name, shape, weight type, inputs, extra llama-embedding flags (hearth gets the same
# pooling/normalisation)
CASES = [
    ("bert-test-cls", "bert-test", "f32", TEXTS, []),
    ("bert-test-mean", "bert-test", "f32", TEXTS, ["--pooling", "mean"]),
    ("nomic-test-mean", "nomic-test", "f32", TEXTS, []),
    ("nomic-test-last", "nomic-test", "f32", TEXTS, ["--pooling", "last"]),
    ("bert-rerank-test", "bert-rerank-test", "f32", PAIRS, ["--embd-normalize", "-1"]),
    # quantized weights (mkmodel's fallbacks for rows no block fits: q5_0, f16)
    ("bert-test-q8_0", "bert-test", "q8_0", TEXTS, []),
    ("nomic-test-q4_k", "nomic-test", "q4_k", TEXTS, []),
    # decoder embedders: the llama-family `tiny` shape (generated BPE), causal, pooled hidden states
    ("tiny-mean", "tiny", "f32", TEXTS, ["--pooling", "mean"]),
    ("tiny-last", "tiny", "f32", TEXTS, ["--pooling", "last"]),
]


def main():
    hearth, llama, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    for name, shape, wtype, inputs, extra in CASES:
        file = shape if wtype == "f32" else shape + "-" + wtype
        model = os.path.join(work, file + ".gguf")
        mk = [hearth, "mkmodel", "--shape", shape, "--type", wtype, "--seed", "42", "-o", model]
        subprocess.run(mk, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = "512" if shape == "tiny" else "64"  # tiny's byte-level BPE needs more tokens
        cmd = [llama, "-m", model, "-p", "\n".join(inputs), "--embd-output-format", "json", "-t", "2",
               "-c", ctx, "-b", "512", "-ub", "512"] + extra
        for attempt in range(5):
            # llama.cpp prints through its asynchronous logger, which now and then loses the end of
            # the output at exit: run again until the JSON is whole
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            try:
                json.loads(out.replace("-nan", "0").replace("nan", "0"))
                break
            except ValueError:
                continue
        # with rank pooling llama-embedding's JSON rows hold the n_cls_out scores first and then
        # whatever follows them in its buffer (not numbers at all: nan): keep the scores only
        rank = shape.startswith("bert-rerank")
        if rank:
            out = out.replace("-nan", "0").replace("nan", "0")
        data = json.loads(out)
        vecs = [d["embedding"][:1] if rank else d["embedding"]
                for d in sorted(data["data"], key=lambda d: d["index"])]
        assert len(vecs) == len(inputs), (name, len(vecs))
        ref = {
            "shape": shape,
            "type": wtype,
            "mkmodel": "hearth mkmodel --shape %s --type %s --seed 42 -o %s.gguf" % (shape, wtype, file),
            "llama_embedding": " ".join(["llama-embedding", "-m", file + ".gguf", "-p", "<inputs joined by \\n>"]
                                        + cmd[5:]),
            "extra_flags": extra,
            "inputs": inputs,
            "embeddings": vecs,
        }
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(ref, f, ensure_ascii=False, indent=1)
        print("wrote %s.json: %d vectors of %d" % (name, len(vecs), len(vecs[0])))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""serve_logprobs_check.py - token log-probabilities of a running `hearth
serve` (test_serve.sh) against llama.cpp's logits for the same file.

usage: serve_logprobs_check.py SOCKET GOLDEN.jsonl
For every prompt of GOLDEN (../shared/golden/llamacpp-<file>.jsonl: prompt
token ids and llama.cpp's 1,024 logits at the last prompt position), asks
llama.cpp's route /completion for one greedy token with n_probs 5 (the
prompt as token ids) and checks: the token is llama.cpp's greedy token, its
logprob is log_softmax(llama.cpp's logits) of it within 5e-3 (Hearth and
llama.cpp both keep an F16 KV cache; the logits agree to ~1e-3), the 5
alternatives are llama.cpp's 5 best (ids, as a set, ignoring near-ties) with
their logprobs within 5e-3, best first. Then the OpenAI routes on one
prompt: chat with logprobs + top_logprobs (one entry per completion token,
the tokens spelling the content, the top alternative first and equal to the
token at temperature 0), completions logprobs N (tokens spelling the text,
increasing text_offset), the stream's chunks carrying every token once, and
Ollama's logprobs (one per eval_count). Prints one line per check; exit 1 on
any failure.
"""
import http.client
import json
import math
import socket
import sys


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def post(sock, route, body, raw=False):
    c = UnixHTTP(sock)
    c.request("POST", route, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    return r.status, data if raw else json.loads(data)


fails = 0


def check(ok, what):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    fails += 0 if ok else 1


def main():
    sock, golden = sys.argv[1], sys.argv[2]
    for line in open(golden):
        g = json.loads(line)
        if len(g["prompt_tokens"]) < 2:
            continue
        lg = g["logits"]
        mx = max(lg)
        lse = mx + math.log(sum(math.exp(x - mx) for x in lg))
        want = sorted(range(len(lg)), key=lambda i: (-lg[i], i))[:5]
        st, r = post(sock, "/completion", {"prompt": g["prompt_tokens"], "n_predict": 1, "n_probs": 5,
                                           "temperature": 0, "cache_prompt": False})
        cp = r.get("completion_probabilities", []) if st == 200 else []
        if not cp:
            check(False, "%r: no completion_probabilities (%s %s)" % (g["prompt"], st, str(r)[:200]))
            continue
        e = cp[0]
        tok = g["tokens"][0]
        d = abs(e["logprob"] - (lg[tok] - lse))
        check(e["id"] == tok and d <= 5e-3, "%r: token %d logprob %.5f, llama.cpp %.5f" % (
            g["prompt"][:30], e["id"], e["logprob"], lg[tok] - lse))
        ids = [t["id"] for t in e["top_logprobs"]]
        gap = lg[want[3]] - lg[want[4]] if len(want) == 5 else 1
        same = set(ids) == set(want) or (gap < 1e-2 and set(ids[:4]) == set(want[:4]))
        close = all(abs(t["logprob"] - (lg[t["id"]] - lse)) <= 5e-3 for t in e["top_logprobs"])
        ordered = all(a["logprob"] >= b["logprob"] for a, b in zip(e["top_logprobs"], e["top_logprobs"][1:]))
        check(same and close and ordered and len(ids) == 5, "%r: top 5 %s, llama.cpp %s" % (g["prompt"][:30], ids, want))

    msgs = [{"role": "user", "content": "Who made the heaven and the earth?"}]
    st, r = post(sock, "/v1/chat/completions", {"messages": msgs, "max_tokens": 6, "temperature": 0,
                                                "logprobs": True, "top_logprobs": 3})
    c = r["choices"][0] if st == 200 else {}
    content = c.get("logprobs", {}).get("content", []) if c else []
    check(st == 200 and len(content) == r["usage"]["completion_tokens"] and
          "".join(x["token"] for x in content) == c["message"]["content"] and
          all(x["top_logprobs"][0]["token"] == x["token"] and len(x["top_logprobs"]) == 3 and x["logprob"] <= 0 and
              bytes(x["bytes"]).decode("utf-8", "replace") == x["token"] for x in content),
          "chat logprobs: one entry per token, spelling the content, greedy = top 1 (%d entries)" % len(content))
    st, r = post(sock, "/v1/completions", {"prompt": "In the beginning", "max_tokens": 5, "temperature": 0,
                                           "logprobs": 2})
    lp = r["choices"][0]["logprobs"] if st == 200 else {}
    check(st == 200 and "".join(lp["tokens"]) == r["choices"][0]["text"] and len(lp["token_logprobs"]) == 5 and
          lp["text_offset"] == sorted(lp["text_offset"]) and all(len(t) <= 2 for t in lp["top_logprobs"]),
          "completions logprobs 2: tokens spell the text, offsets increase")
    st, raw = post(sock, "/v1/chat/completions", {"messages": msgs, "max_tokens": 6, "temperature": 0,
                                                  "logprobs": True, "stream": True}, raw=True)
    toks = []
    for ln in raw.split("\n"):
        if ln.startswith("data: {"):
            ch = json.loads(ln[6:])["choices"][0]
            toks += [x["token"] for x in ((ch.get("logprobs") or {}).get("content") or [])]
    check(st == 200 and "".join(toks) == "".join(x["token"] for x in content),
          "streamed chat: every token's logprob once, in order (%d)" % len(toks))
    st, r = post(sock, "/api/generate", {"model": sys.argv[3], "prompt": "Who?", "stream": False,
                                         "logprobs": True, "top_logprobs": 2,
                                         "options": {"num_predict": 4, "temperature": 0}})
    check(st == 200 and len(r.get("logprobs", [])) == r["eval_count"] and
          all(len(x["top_logprobs"]) == 2 for x in r["logprobs"]), "Ollama logprobs: one per eval_count")
    st, r = post(sock, "/v1/chat/completions", {"messages": msgs, "top_logprobs": 2})
    check(st == 400 and "logprobs" in json.dumps(r), "top_logprobs without logprobs: 400 (%d)" % st)
    st, r = post(sock, "/v1/chat/completions", {"messages": msgs, "logprobs": True, "top_logprobs": 99})
    check(st == 400, "top_logprobs 99: 400 (%d)" % st)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""pull_server.py - the HTTP server test_pull.sh starts on 127.0.0.1: serves
the files of a folder with HTTP Range support and fakes the shape of the
Hugging Face API, so `hearth pull` can be tested without the network.

Routes (ROOT = the folder given on the command line):
  GET /api/models/ORG/REPO          {"id": ..., "siblings": [{"rfilename": F}...]}
                                    for every file in ROOT (any ORG/REPO)
  GET /api/models/ORG/REPO/tree/main [{"type":"file","path":F,"size":N,"lfs":{"oid":SHA256,"size":N}}]
                                    (ORG "liar": every oid is wrong; ORG "nolfs": no lfs fields)
  GET|HEAD /ORG/REPO/resolve/main/F ROOT/F, answering "Range: bytes=N-" with 206
  /plain/F                          ROOT/F (same as resolve)
  /slow/F                           ROOT/F at about 1 MiB/s (a pull to kill)
  /trunc/F                          says the full length, sends half, closes
  /stall/F                          says the full length, sends half, then waits
  anything else                     404
Usage: pull_server.py ROOT PORTFILE  (writes the chosen port to PORTFILE).
"""
import hashlib
import http.server
import json
import os
import re
import sys
import time

ROOT = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _file(self):
        p = self.path.split("?")[0]
        m = re.match(r"^/(plain|slow|trunc|stall)/([^/]+)$", p)
        if m:
            return m.group(1), m.group(2)
        m = re.match(r"^/[^/]+/[^/]+/resolve/main/([^/]+)$", p)
        if m:
            return "plain", m.group(1)
        return None, None

    def _send_404(self):
        body = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        t = re.match(r"^/api/models/([^/]+)/([^/]+)/tree/main$", self.path)
        if t:
            out = []
            for f in sorted(os.listdir(ROOT)):
                size = os.path.getsize(os.path.join(ROOT, f))
                oid = hashlib.sha256(open(os.path.join(ROOT, f), "rb").read()).hexdigest()
                if t.group(1) == "liar":
                    oid = "0" * 64
                e = {"type": "file", "path": f, "size": size, "oid": "1" * 40}
                if t.group(1) != "nolfs":
                    e["lfs"] = {"oid": oid, "size": size, "pointerSize": 130}
                out.append(e)
            body = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        m = re.match(r"^/api/models/([^/]+/[^/]+)$", self.path)
        if m:
            sib = [{"rfilename": f} for f in sorted(os.listdir(ROOT))]
            body = json.dumps({"id": m.group(1), "siblings": sib}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        mode, name = self._file()
        path = os.path.join(ROOT, name) if name else None
        if not path or not os.path.isfile(path):
            return self._send_404()
        data = open(path, "rb").read()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        rest = data[start:]
        if mode == "trunc":
            self.wfile.write(rest[: len(rest) // 2])
            self.close_connection = True
            return
        if mode == "stall":
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            time.sleep(30)
            return
        if mode == "slow":
            try:
                for i in range(0, len(rest), 65536):
                    self.wfile.write(rest[i : i + 65536])
                    self.wfile.flush()
                    time.sleep(0.06)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the test kills the client half-way on purpose
            return
        self.wfile.write(rest)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()

#!/usr/bin/env python3
"""check_tree.py - the structural rules of Hearth's source tree, checked.

Usage: python3 tools/check_tree.py [ROOT]      (ROOT defaults to the checkout)

Fails (exit 1, one line per finding, "file:line: what") when:
  1. a file includes from a floor above its own. The floors, lowest first:
       core  <  backends  <  runtime  <  app
     and inside runtime/ and app/ the concept folders have their own order
     (RUNTIME_LEVELS, APP_LEVELS below): a folder may include its own files
     and folders of a lower level, never a sibling of the same level or one
     above. Inside backends/, a device folder (cpu, cuda, vulkan) never
     includes another; only the registry (backends/*.c) knows them all.
     app/ never includes backends/backend_impl.h (the ops vtable).
  2. a quoted include names no file: every #include "..." is either a file
     of the same folder or a path from the root ("core/dtype.h").
  3. files include each other in a loop (a cycle in the file graph).
  4. a source file is longer than MAX_FILE_LINES (generated tables excepted:
     files whose header says "generated"), or a function is longer than
     MAX_FUNC_LINES unless the line before it says "check_tree: flat table"
     (a dispatch table or a switch with one short case per item).
tests/ and tools/ may include anything below them; they are not a floor.
"""
import os
import re
import sys

FLOORS = ["core", "backends", "runtime", "app"]
# Level of each concept folder inside a floor; a file may include a folder of
# a strictly lower level, or its own folder (and its subfolders).
RUNTIME_LEVELS = {"format": 1, "store": 1, "kv": 1, "text": 2, "template": 3, "model": 3, "serving": 4}
APP_LEVELS = {"cli": 1, "chat": 2, "serve": 2, "commands": 2, "": 3}  # "" = app/*.c (main)
BACKEND_DEVICES = {"cpu", "cuda", "vulkan"}
IMPL_HEADER = "backends/backend_impl.h"  # the ops vtable: never included by app/
MAX_FILE_LINES = 1500
MAX_FUNC_LINES = 150
SOURCE_EXT = (".c", ".h", ".cu", ".cuh")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(root):
    out = []
    for top in FLOORS + ["tests", "tools"]:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            dirs[:] = sorted(x for x in dirs if x not in ("node_modules",) and not x.startswith("corpus"))
            for f in sorted(files):
                if f.endswith(SOURCE_EXT):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return out


def floor_of(path):
    """(floor index, concept, sub) for a path, or None for tests/tools."""
    parts = path.split("/")
    if parts[0] not in FLOORS:
        return None
    concept = parts[1] if len(parts) > 2 else ""
    return FLOORS.index(parts[0]), concept


def resolve(root, src, inc, known):
    same = os.path.normpath(os.path.join(os.path.dirname(src), inc))
    if same in known:
        return same
    rooted = os.path.normpath(inc)
    if rooted in known:
        return rooted
    if src.startswith("tests/"):
        t = os.path.normpath(os.path.join("tests", inc))
        if t in known:
            return t
    return None


def layer_error(src, dst):
    fs, fd = floor_of(src), floor_of(dst)
    if fs is None:  # tests/ and tools/ sit on top of everything
        return None
    if fd is None:
        return "includes %s, which is not a floor (tests/ or tools/)" % dst
    (ls, cs), (ld, cd) = fs, fd
    if dst == IMPL_HEADER and FLOORS[ls] == "app":
        return "app/ includes %s: the ops vtable is for backends and the runtime code that enqueues ops; use the queries of backends/backend.h" % dst
    if ld > ls:
        return "%s/ includes %s from %s/, a floor above it" % (FLOORS[ls], dst, FLOORS[ld])
    if ld < ls or cs == cd:
        return None
    floor = FLOORS[ls]
    if floor == "backends":
        if cs in BACKEND_DEVICES and cd in BACKEND_DEVICES:
            return "device folder backends/%s includes %s from backends/%s" % (cs, dst, cd)
        if cs in BACKEND_DEVICES or cs == "":
            return None  # devices include the interface; the registry includes devices
        return None
    levels = RUNTIME_LEVELS if floor == "runtime" else APP_LEVELS
    if cs not in levels or cd not in levels:
        return "%s/%s is not in the folder order of tools/check_tree.py (add it)" % (floor, cs if cs not in levels else cd)
    if levels[cd] >= levels[cs]:
        return "%s/%s includes %s from %s/%s, which is not below it" % (floor, cs, dst, floor, cd)
    return None


def find_cycles(graph):
    """Every elementary loop found by a DFS, as a list of files (each once)."""
    cycles, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return cycles


NOT_FUNC = re.compile(r"^(typedef|struct|enum|union|#|static const|const|extern \"C\")|=")


def long_functions(lines):
    """(start line, length, name) of each top-level function over MAX_FUNC_LINES.
    Relies on the clang-format layout: a definition starts at column 0 (its
    parameters may wrap onto indented lines), its body opens with '{' at the
    end of the signature and closes with a '}' at column 0."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line or line[0] in " \t}/*" or NOT_FUNC.search(line.split("(")[0]) or "(" not in line:
            i += 1
            continue
        k = i  # the signature may continue on indented lines
        while not lines[k].rstrip().endswith("{") and k + 1 < len(lines) and lines[k + 1][:1] in (" ", "\t") \
                and ";" not in lines[k]:
            k += 1
        if not lines[k].rstrip().endswith(") {") and not re.search(r"\)\s*(const\s*)?\{$", lines[k].rstrip()):
            i += 1
            continue
        j = k + 1
        while j < len(lines) and not lines[j].startswith("}"):
            j += 1
        n = j - i + 1
        if n > MAX_FUNC_LINES and not (i > 0 and "check_tree: flat table" in lines[i - 1]):
            name = line.split("(")[0].split()[-1].lstrip("*")
            out.append((i + 1, n, name))
        i = j + 1
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    files = sources(root)
    known = set(files)
    errors, graph = [], {}
    for src in files:
        with open(os.path.join(root, src), encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
        graph[src] = []
        for no, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            dst = resolve(root, src, m.group(1), known)
            if dst is None:
                errors.append('%s:%d: #include "%s" names no file (write it from the root, e.g. "core/dtype.h", or as a file of the same folder)' % (src, no, m.group(1)))
                continue
            graph[src].append(dst)
            why = layer_error(src, dst)
            if why:
                errors.append("%s:%d: %s" % (src, no, why))
        if floor_of(src) is None:
            continue
        head = "\n".join(lines[:12]).lower()
        if len(lines) > MAX_FILE_LINES and "generated" not in head:
            errors.append("%s:1: %d lines, over the %d-line limit: split it by idea" % (src, len(lines), MAX_FILE_LINES))
        for start, n, name in long_functions(lines):
            errors.append("%s:%d: function %s is %d lines, over %d: make its steps functions (or mark a flat table with 'check_tree: flat table')" % (src, start, name, n, MAX_FUNC_LINES))
    for cyc in find_cycles(graph):
        errors.append("%s:1: include loop: %s" % (cyc[0], " -> ".join(cyc)))
    for e in errors:
        print(e)
    if errors:
        print("check_tree: %d finding(s) in %d files" % (len(errors), len(files)), file=sys.stderr)
        return 1
    print("check_tree: %d files, floors %s, no upward include, no loop, no oversized file or function" % (len(files), " < ".join(FLOORS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The main job, from a fresh checkout: install what the build needs, build,
# and open the chat (`hearth chat`) on the sample model (../shared/models)
# unless you pass other arguments, e.g. ./run.sh run -m my-model.gguf -p "Hello".
# Without a terminal (CI, a pipe) it asks the sample model one question instead.
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
if [ $# -eq 0 ]; then
  if [ -t 0 ] && [ -t 1 ]; then
    set -- chat
  else
    set -- chat --temp 0 --stats --once "Who was Moses?"
  fi
fi
exec build/bin/hearth "$@"

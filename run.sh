#!/usr/bin/env bash
# The main job, from a fresh checkout: install what the build needs, build,
# and start Hearth on the sample model (../shared/models) unless you pass
# other arguments, e.g. ./run.sh run -m my-model.gguf -p "Hello".
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
if [ $# -eq 0 ]; then
  set -- run -m ../shared/models/hearth-kjv-llama-q8_0.gguf --temp 0 -n 64 \
    -p "<|im_start|>user
Who was Moses?<|im_end|>
<|im_start|>assistant
"
fi
exec build/bin/hearth "$@"

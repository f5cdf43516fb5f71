#!/usr/bin/env bash
# Install the Debian packages Hearth needs to build (and, with --tests, to
# run the whole test suite: ./test.sh passes it; ./run.sh does not).
# Idempotent: only missing packages are installed; apt-get update runs once
# when something is missing. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libsqlite3-dev sqlite3      # prefix cache + chat history
  libyaml-dev                 # config file
  libncurses-dev              # TUI (wide-character ncursesw)
  libcjson-dev                # JSON (API bodies, --json output)
  libmicrohttpd-dev           # HTTP server for `hearth serve`
  libcurl4-openssl-dev libssl-dev  # `hearth pull` (download, sha256)
  libvulkan-dev glslc         # Vulkan backend (the GPU's own driver does the rest)
)
if [ "${1:-}" = "--tests" ]; then
  PKGS+=(
    clang libclang-rt-dev     # libFuzzer + sanitizers
    tmux                      # TUI tests
    python3                   # tools/check_tree.py (the floors check, tests/cli/test_tree.sh), tests/cli/test_embed.sh
    systemd man-db curl       # test_package.sh: systemd-analyze verify, systemd-socket-activate, a request
    mesa-vulkan-drivers vulkan-tools  # lavapipe: the Vulkan tests' device
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # arm64 cross build + emulation (test_neon_qemu.sh)
  )
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Installs the Debian packages the build needs, only those that are missing.
# `install-deps.sh fuzz` also installs what `make fuzz` needs (clang and its libFuzzer runtime);
# the ordinary build and `make test` never need them.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libpcre2-dev
      libutf8proc-dev libgtest-dev libcpp-httplib-dev)
if [ "${1:-}" = fuzz ]; then pkgs+=(clang-14 libclang-rt-14-dev); fi
# `install-deps.sh test`: qemu-user, which runs some tests on emulated older CPUs (AVX2 without
# AVX-512, plain SSE2); curl, nodejs and npm, which the server's client tests use (curl as users
# call it, the OpenAI Node SDK). Those tests are skipped where these are missing.
if [ "${1:-}" = test ]; then pkgs+=(qemu-user curl nodejs npm); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Installs the Debian packages the build needs, only those that are missing.
# `install-deps.sh fuzz` also installs what `make fuzz` needs (clang and its libFuzzer runtime);
# the ordinary build and `make test` never need them.
# `install-deps.sh test` also tries the tools some tests use: qemu-user, which runs tests on
# emulated older CPUs (AVX2 without AVX-512, plain SSE2); curl, node and npm, which the server's
# client tests use (curl as users call it, the OpenAI Node SDK); rsvg-convert (librsvg2-bin), which
# renders the leaderboard's SVG in its test. They are optional: a tool already
# on the PATH (Node.js from another repository than Debian's, say) counts as present, a failed
# install is reported and not fatal, and the tests that need a missing tool are skipped.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libpcre2-dev
      libutf8proc-dev libgtest-dev libcpp-httplib-dev libsqlite3-dev)
if [ "${1:-}" = fuzz ]; then pkgs+=(clang-14 libclang-rt-14-dev); fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
apt_updated=0
apt_install() {
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt_install "${missing[@]}"
fi

if [ "${1:-}" = test ]; then
  # tool on the PATH -> Debian package that provides it
  for pair in qemu-x86_64:qemu-user curl:curl node:nodejs npm:npm rsvg-convert:librsvg2-bin; do
    tool=${pair%%:*} pkg=${pair#*:}
    command -v "$tool" >/dev/null 2>&1 && continue
    echo "installing (optional, for tests): $pkg"
    apt_install "$pkg" ||
      echo "warning: could not install $pkg; the tests that use $tool will be skipped" >&2
  done
fi
exit 0

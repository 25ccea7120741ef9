#!/usr/bin/env bash
# Installs what execfs needs to build, run and test, on Debian 12 (as root,
# or through sudo). Quiet when everything is there already.
#
#   tests/install-deps.sh         everything the tests need
#   tests/install-deps.sh --run   only what building and running execfs and
#                                 the bundled local APIs need (the demos)
set -euo pipefail

# build and run: the compiler, libfuse, libcurl, cJSON; python3 for the fakes
packages=(gcc meson ninja-build pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
          libcjson-dev python3 ca-certificates)
if [ "${1:-}" != --run ]; then
    packages+=(python3-pytest curl
               scdoc jq sqlite3 miller python3-pandas
               openssl man-db groff-base systemd # test_tls's certificates; man page; unit check
               clang libclang-rt-14-dev llvm # the fuzzers: libFuzzer, llvm-symbolizer
               rsync zstd less file) # tools test_whole_files points at the results
    # DuckDB comes from npm (@duckdb/node-api, installed by the test itself):
    # node and npm from Debian where the machine has none of its own
    command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
    echo "error: /dev/fuse is missing: this machine cannot mount FUSE filesystems" >&2
    exit 1
fi

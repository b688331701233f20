#!/usr/bin/env bash
# setup.sh — install the Debian packages cairn needs to build and test.
# Idempotent: installs only what is missing. Needs root or sudo.
set -euo pipefail
# One line per part that needs packages, so parts add theirs without touching others'.
PKGS=(build-essential cmake pkg-config git ca-certificates python3 python3-numpy)
PKGS+=(libsqlite3-dev libcjson-dev libutf8proc-dev libpcre2-dev libxxhash-dev)  # store, text, tokenizer
PKGS+=(libstemmer-dev libpoppler-glib-dev libgumbo-dev)                          # analyzer, ingest
PKGS+=(clang libclang-rt-14-dev sqlite3)                                       # fuzz (libFuzzer runtime), reliability tests
PKGS+=(libmicrohttpd-dev)  # server
PKGS+=(libedit-dev)  # chat
PKGS+=(libcurl4-openssl-dev)  # gateway
PKGS+=(libarchive-dev libuchardet-dev libxml2-dev zlib1g-dev)  # ingest formats
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"

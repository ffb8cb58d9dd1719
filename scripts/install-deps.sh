#!/usr/bin/env bash
# Installs the Debian packages lowbit builds with, only those missing. Idempotent.
# Not a build step: the Makefile calls it before configuring.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libhwy-dev libopenblas-openmp-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev
  libpcre2-dev libutf8proc-dev   # tokenizer.json: Unicode regexes, normalization forms
  libxxhash-dev      # quantize --resume: XXH3 digests of what was written
  openmpi-bin libopenmpi-dev   # mpirun -np N lowbit imatrix|...: work shared across processes and machines
  clang libomp-dev   # make fuzz: libFuzzer and the OpenMP runtime clang links
  librsvg2-dev       # eval --plot FILE.png: the SVG plot rasterized
  chromium python3   # tests: eval --html rendered in a headless browser, its numbers checked
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Sourced by the cli_*.sh tests after `set -euo pipefail`: lowbit=$1, shared=$2, a
# temporary $out removed on exit, and fail MESSAGE.
lowbit=$1
shared=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

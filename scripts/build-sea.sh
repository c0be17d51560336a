#!/usr/bin/env bash
# Build dist/spread-pipe: one executable holding Node and the whole program.
#   1. esbuild bundles src/main.ts and its dependencies into one CommonJS file;
#   2. node makes a single-executable-application blob of it;
#   3. postject injects the blob into a copy of this node binary.
# Nothing is downloaded at run time and nothing is read next to the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/sea
mkdir -p "$out"

# yargs' ESM shim asks import.meta.url for its own location (to find locale
# files, which it does without when they are absent); in a CommonJS bundle
# that becomes the bundle's own file URL.
npx esbuild src/main.ts \
  --bundle --platform=node --target=node20 --format=cjs \
  --define:import.meta.url=__bundle_url \
  --banner:js="const __bundle_url = require('node:url').pathToFileURL(__filename).href;" \
  --log-level=warning \
  --outfile="$out/spread-pipe.cjs"

cat > "$out/sea-config.json" <<JSON
{
  "main": "$out/spread-pipe.cjs",
  "output": "$out/sea-prep.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true
}
JSON
node --experimental-sea-config "$out/sea-config.json" >/dev/null 2>&1

cp "$(command -v node)" dist/spread-pipe.tmp
chmod u+w dist/spread-pipe.tmp
# postject warns about ELF note sections it does not need; keep real errors.
npx postject dist/spread-pipe.tmp NODE_SEA_BLOB "$out/sea-prep.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 \
  > /dev/null 2> >(grep -v "Can't find string offset" >&2)
mv dist/spread-pipe.tmp dist/spread-pipe
echo "built dist/spread-pipe ($(du -h dist/spread-pipe | cut -f1))"

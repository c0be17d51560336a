'use strict';
/**
 * Stand-in for the `bindings` package inside the single executable only
 * (scripts/sea-bundle.mjs swaps it in). A native addon cannot be require()d
 * from inside a Node SEA: the build stores each compiled .node file as a SEA
 * asset, and this writes it to a private temporary directory, loads it with
 * process.dlopen and removes the file again at once (Linux keeps the mapping).
 * The addon was compiled against this very node binary, so the ABI matches.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sea = require('node:sea');

const loaded = new Map();

function load(key) {
  let exports = loaded.get(key);
  if (exports) return exports;
  if (!sea.isSea()) throw new Error(`native addon ${key}: this bundle only runs as the single executable`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-addon-'));
  const file = path.join(dir, path.basename(key));
  try {
    fs.writeFileSync(file, new Uint8Array(sea.getAsset(key)), { mode: 0o700 });
    const mod = { exports: {} };
    try {
      process.dlopen(mod, file);
    } catch (e) {
      // The usual cause is a temporary directory mounted noexec.
      throw new Error(`cannot load native addon ${key} from ${dir} (set TMPDIR to a directory that allows executables): ${e.message}`);
    }
    exports = mod.exports;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  loaded.set(key, exports);
  return exports;
}

/** `require('bindings')` of package `pkg`: a function of the addon's file name, as bindings exports. */
exports.bindingsFor = (pkg) => (opts) => {
  const name = typeof opts === 'string' ? opts : opts.bindings;
  return load(`${pkg}/${name.endsWith('.node') ? name : `${name}.node`}`);
};

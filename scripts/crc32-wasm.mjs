#!/usr/bin/env node
/**
 * src/crc32.wat -> src/crc32-wasm.ts (the module's bytes, base64), with the
 * WebAssembly Binary Toolkit's own text parser (the `wabt` package, a
 * development dependency only: the program embeds the bytes and needs nothing
 * at run time). `--check` exits 1 if the file would change (test/crc32.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WAT = path.join(ROOT, 'src', 'crc32.wat');
const OUT = path.join(ROOT, 'src', 'crc32-wasm.ts');

export async function crc32WasmSource() {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('crc32.wat', fs.readFileSync(WAT, 'utf8'));
  const { buffer } = mod.toBinary({});
  mod.destroy();
  const b64 = Buffer.from(buffer).toString('base64');
  return `/** Generated from crc32.wat by scripts/crc32-wasm.mjs: do not edit. */
export const CRC32_WASM = Buffer.from(
  '${b64}',
  'base64',
);
`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = await crc32WasmSource();
  if (process.argv.includes('--check')) process.exit(fs.readFileSync(OUT, 'utf8') === src ? 0 : 1);
  fs.writeFileSync(OUT, src);
}

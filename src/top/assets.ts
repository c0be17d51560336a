/**
 * The files the --http page loads, served from inside the program (no CDN):
 * uPlot's script and stylesheet. From the npm package when run as
 * dist/main.js; from SEA assets inside the single executable, where nothing
 * next to the binary is read (scripts/sea-bundle.mjs stores them).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';

/** SEA asset key -> file inside node_modules. scripts/sea-bundle.mjs reads this list. */
export const WEB_ASSETS = {
  'uplot/uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uplot/uPlot.min.css': 'uplot/dist/uPlot.min.css',
} as const;
export type WebAsset = keyof typeof WEB_ASSETS;

const cache = new Map<WebAsset, string>();

export function webAsset(name: WebAsset): string {
  let text = cache.get(name);
  if (text !== undefined) return text;
  const req = createRequire(import.meta.url);
  const sea = req('node:sea') as { isSea(): boolean; getAsset(key: string, encoding: string): string };
  text = sea.isSea() ? sea.getAsset(name, 'utf8') : fs.readFileSync(req.resolve(WEB_ASSETS[name]), 'utf8');
  cache.set(name, text);
  return text;
}

#!/usr/bin/env node
/**
 * Bundle step of scripts/build-sea.sh: src/main.ts and every dependency into
 * ONE CommonJS file (what a Node SEA runs), plus the SEA config naming it.
 *   node scripts/sea-bundle.mjs OUTDIR [--no-code-cache]
 * writes OUTDIR/spread-pipe.cjs and OUTDIR/sea-config.json.
 *
 * - yargs 18 is ESM-only and asks import.meta.url where it lives (to find its
 *   locale files; it does without them when they are absent): in the bundle
 *   import.meta.url is the bundle's own file URL.
 * - The version is inlined from package.json (src/version.ts).
 * - Native addons loaded through `bindings` (unix-dgram, for nginx's unix
 *   syslog socket) become SEA assets, loaded by scripts/sea-addon.cjs.
 * - uPlot's script and stylesheet (top --http's charts) become SEA assets too.
 */
import fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [outArg, ...flags] = process.argv.slice(2);
if (!outArg || flags.some((f) => f !== '--no-code-cache')) {
  process.stderr.write('usage: node scripts/sea-bundle.mjs OUTDIR [--no-code-cache]\n');
  process.exit(2);
}
const outDir = path.resolve(outArg);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** SEA asset key -> file: compiled .node files, and the files top's web page loads. */
const assets = {};
// The same keys as WEB_ASSETS in src/top/assets.ts, which reads them back with sea.getAsset().
const require = createRequire(import.meta.url);
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) assets[`uplot/${f}`] = require.resolve(`uplot/dist/${f}`);

function packageRoot(file) {
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no package.json above ${file}`);
}

const nativeAddons = {
  name: 'sea-native-addons',
  setup(build) {
    build.onResolve({ filter: /^bindings$/ }, (args) => ({ path: packageRoot(args.importer), namespace: 'sea-bindings' }));
    build.onLoad({ filter: /.*/, namespace: 'sea-bindings' }, (args) => {
      const name = JSON.parse(fs.readFileSync(path.join(args.path, 'package.json'), 'utf8')).name;
      const release = path.join(args.path, 'build', 'Release');
      const files = fs.existsSync(release) ? fs.readdirSync(release).filter((f) => f.endsWith('.node')) : [];
      if (files.length === 0) return { errors: [{ text: `${name} needs a native addon and ${release} has none (did npm ci build it?)` }] };
      for (const f of files) assets[`${name}/${f}`] = path.join(release, f);
      return {
        contents: `module.exports = require('./scripts/sea-addon.cjs').bindingsFor(${JSON.stringify(name)});`,
        resolveDir: ROOT,
        loader: 'js',
      };
    });
  },
};

/**
 * string-width is only called to lay out --help, but yargs imports it eagerly
 * and its first evaluation builds an Intl.Segmenter and Unicode-property
 * regexes: about 40 ms of every start. In the bundle each default import of
 * it becomes a stand-in that loads the real module on first call.
 */
const lazyDefaults = {
  name: 'lazy-default-imports',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'lazy') return undefined;
      const real = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'lazy' });
      if (real.errors.length) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-default' };
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-default' }, (args) => ({
      contents: `let real;
export default function lazyDefault(...a) {
  real ??= require(${JSON.stringify(args.path)}).default;
  return real(...a);
}`,
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};

fs.mkdirSync(outDir, { recursive: true });
const bundle = path.join(outDir, 'spread-pipe.cjs');
const result = await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: ['src/main.ts'],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: {
    'import.meta.url': '__bundle_url',
    SPREAD_PIPE_VERSION: JSON.stringify(pkg.version),
  },
  banner: { js: "const __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [nativeAddons, lazyDefaults],
  logLevel: 'warning',
  metafile: true,
});

// A SEA's require() knows only built-in modules: anything left external would fail at run time.
const external = Object.values(result.metafile.outputs)
  .flatMap((o) => o.imports)
  .filter((i) => i.external && !i.path.startsWith('node:') && !builtinModules.includes(i.path));
if (external.length) throw new Error(`not bundled: ${[...new Set(external.map((i) => i.path))].join(', ')}`);

const config = {
  main: bundle,
  output: path.join(outDir, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: !flags.includes('--no-code-cache'),
  assets,
};
fs.writeFileSync(path.join(outDir, 'sea-config.json'), `${JSON.stringify(config, null, 2)}\n`);

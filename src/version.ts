/**
 * The release version, package.json's. The single executable has no files to
 * read, so its bundler (scripts/sea-bundle.mjs) inlines the version as the
 * constant SPREAD_PIPE_VERSION; the plain build (`node dist/main.js`, an npm
 * package, which always ships package.json) reads it from the package.
 */
import fs from 'node:fs';

declare const SPREAD_PIPE_VERSION: string | undefined;

function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const VERSION: string = typeof SPREAD_PIPE_VERSION === 'string' ? SPREAD_PIPE_VERSION : packageVersion();

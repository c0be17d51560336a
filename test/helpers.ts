/**
 * Test helpers, split by concern under test/helpers/; this module gathers them so a test imports
 * from one place.
 */
export * from './helpers/process.js';
export * from './helpers/daemons.js';
export * from './helpers/captures.js';
export * from './helpers/random.js';
export * from './helpers/lines.js';
export * from './helpers/syslog.js';
export * from './helpers/apache.js';
export * from './helpers/spool-files.js';

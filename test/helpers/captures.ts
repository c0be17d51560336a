/** Golden vectors from real Spread daemons (test/fixtures/captures): loading and reading capture steps. */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './process.js';

export const CAPTURE_DIR = path.join(ROOT, 'test', 'fixtures', 'captures');

export interface CaptureStep {
  conn: string;
  dir: 'c2d' | 'd2c';
  /** One protocol unit's exact bytes; absent for `eof` / `reset` events. */
  hex?: string;
  len?: number;
  event?: 'eof' | 'reset';
  note?: string;
  /** The capture analyser's reading of the bytes (see the captures' README). */
  decoded?: Record<string, any>;
}

export interface Capture {
  file: string;
  scenario: string;
  daemon_version: string;
  connections?: { conn: string; client: string }[];
  steps: CaptureStep[];
  client_output?: Record<string, string[]>;
}

const captureCache = new Map<string, Capture>();

/** Every capture file in test/fixtures/captures, sorted. */
export function captureFiles(): string[] {
  return fs.readdirSync(CAPTURE_DIR).filter((f) => f.endsWith('.json')).sort();
}

export function loadCapture(file: string): Capture {
  let c = captureCache.get(file);
  if (!c) {
    c = { ...(JSON.parse(fs.readFileSync(path.join(CAPTURE_DIR, file), 'utf8')) as Omit<Capture, 'file'>), file };
    captureCache.set(file, c);
  }
  return c;
}

export function stepBytes(s: CaptureStep): Buffer {
  return Buffer.from(s.hex ?? '', 'hex');
}

/** A step carrying one framed message (after the handshake). */
export function isFrameStep(s: CaptureStep): boolean {
  return !!s.hex && s.decoded?.kind === 'message';
}

/** Major version of the daemon that made a capture ("5.0.1 (test policy build)" -> 5). */
export function captureDaemonMajor(c: Capture): number {
  return Number(/^(\d+)\./.exec(c.daemon_version)![1]);
}

/** The library version a connection announced in its connect request. */
export function connLibVersion(c: Capture, conn: string): number[] | undefined {
  return c.steps.find((s) => s.conn === conn && s.decoded?.kind === 'connect_request')?.decoded!.lib_version as number[] | undefined;
}

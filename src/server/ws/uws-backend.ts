import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Uws from 'uWebSockets.js';

/** Which uWebSockets.js the process got: its native binary, or the slow JavaScript fallback. */
export interface UwsBackend {
  uws: typeof Uws;
  kind: 'native' | 'fallback';
  /** The binary that loaded, or why the fallback was used. */
  detail: string;
}

const require = createRequire(import.meta.url);

/**
 * Load uWebSockets.js and find out which implementation loaded. The registry mirror we depend on
 * quietly falls back to a JavaScript implementation when its binary does not load (another
 * platform, an old glibc), which serves far fewer clients: the server must say which one it runs.
 * A native addon loaded by require sits in require.cache under its path; the fallback does not.
 */
export function loadUws(): UwsBackend {
  const entry = require.resolve('uWebSockets.js');
  const binary = path.join(path.dirname(entry), '..', 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  const warn = console.warn;
  const warnings: string[] = [];
  // The mirror prints its fallback notice with console.warn: keep it for our own report instead.
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  let uws: typeof Uws;
  try {
    uws = require('uWebSockets.js') as typeof Uws;
  } finally {
    console.warn = warn;
  }
  if (require.cache[binary] !== undefined) return { uws, kind: 'native', detail: binary };
  const reason = warnings.join(' ').replace(/\s+/g, ' ').trim() || 'the native binary was not loaded';
  return { uws, kind: 'fallback', detail: reason };
}

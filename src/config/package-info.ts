/**
 * Reads name and version from the project's package.json. The file is found by walking up from
 * this module because the depth differs between src/ (tests) and dist/src/ (built code).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  name: string;
  version: string;
}

let cached: PackageInfo | undefined;

export function readPackageInfo(): PackageInfo {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const parsed = JSON.parse(readFileSync(candidate, 'utf8')) as Partial<PackageInfo>;
      if (typeof parsed.name !== 'string' || typeof parsed.version !== 'string') {
        throw new Error(`${candidate} has no name or version`);
      }
      cached = { name: parsed.name, version: parsed.version };
      return cached;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

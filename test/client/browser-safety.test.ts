import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');
const ALLOWED_PACKAGES = new Set(['msgpackr', '@noble/ed25519']);

interface Import {
  specifier: string;
  dynamic: boolean;
}

function imports(source: string): Import[] {
  const found: Import[] = [];
  for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g)) {
    found.push({ specifier: (match[1] ?? match[2] ?? match[3])!, dynamic: match[2] !== undefined });
  }
  return found;
}

function code(name: string): string {
  return fs
    .readFileSync(path.join(CLIENT_DIR, name), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
}

describe('src/client runs in browsers', () => {
  const files = fs.readdirSync(CLIENT_DIR).filter((name) => name.endsWith('.ts'));

  it('has source files to check', () => {
    expect(files).toContain('client.ts');
    expect(files).toContain('transport.ts');
  });

  it.each(files)('%s imports only its folder, src/protocol, msgpackr, @noble/ed25519 (and ws only dynamically)', (name) => {
    for (const { specifier, dynamic } of imports(code(name))) {
      const ownFolder = specifier.startsWith('./') && !specifier.includes('/', 2) && specifier.endsWith('.js');
      const allowed = ownFolder || specifier === '../protocol/index.js' || ALLOWED_PACKAGES.has(specifier) || (specifier === 'ws' && dynamic);
      expect(allowed, `${name} imports ${specifier}`).toBe(true);
    }
    expect(code(name)).not.toMatch(/\brequire\s*\(/);
  });

  it.each(files)('%s uses no Node-only globals', (name) => {
    const source = code(name);
    for (const global of ['Buffer', '__dirname', '__filename', 'setImmediate']) {
      expect(source, `${name} uses ${global}`).not.toMatch(new RegExp(`\\b${global}\\b`));
    }
    // `process` only as a property looked up on globalThis (runtime detection), never as a bare global.
    expect(source, `${name} uses the process global`).not.toMatch(/(?<![.\w?])process\s*[.[]/);
  });
});

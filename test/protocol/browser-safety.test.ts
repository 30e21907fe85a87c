import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROTOCOL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/protocol');

/** Every module specifier in static imports, re-exports and dynamic imports. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g)) {
    found.push((match[1] ?? match[2] ?? match[3])!);
  }
  return found;
}

describe('src/protocol runs in browsers', () => {
  const files = fs.readdirSync(PROTOCOL_DIR).filter((name) => name.endsWith('.ts'));

  it('has source files to check', () => {
    expect(files).toContain('codec.ts');
    expect(files).toContain('index.ts');
  });

  it.each(files)('%s imports only msgpackr and files of its own folder', (name) => {
    const source = fs.readFileSync(path.join(PROTOCOL_DIR, name), 'utf8');
    for (const specifier of specifiers(source)) {
      const allowed = specifier === 'msgpackr' || (specifier.startsWith('./') && !specifier.includes('/', 2) && specifier.endsWith('.js'));
      expect(allowed, `${name} imports ${specifier}`).toBe(true);
    }
    expect(source).not.toMatch(/\brequire\s*\(/);
  });

  it.each(files)('%s uses no Node-only globals', (name) => {
    const code = fs
      .readFileSync(path.join(PROTOCOL_DIR, name), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const global of ['Buffer', 'process', '__dirname', 'setImmediate', 'globalThis.Buffer']) {
      expect(code, `${name} uses ${global}`).not.toMatch(new RegExp(`\\b${global.replace('.', '\\.')}\\b`));
    }
  });
});

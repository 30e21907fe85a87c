import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('package subpath ensync-node-engine/client', () => {
  it('resolves to the built SDK with its type declarations (run `npx tsc -b` first)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    const entry = pkg.exports['./client']!;
    expect(fs.existsSync(path.join(ROOT, entry.types))).toBe(true);
    const script = "const m = await import('ensync-node-engine/client'); const k = m.generateKeyPair(); console.log(JSON.stringify([typeof m.EnSyncClient.connect, typeof m.EnSyncError, k.secretKey.length]));";
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(output)).toEqual(['function', 'function', 44]);
  });
});

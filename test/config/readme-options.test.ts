import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_OPTIONS } from '../../src/config/config-options.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md');

describe('README configuration table', () => {
  it('has one row per option with the same flag, env var and default as the code', async () => {
    const rows = (await readFile(README, 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('| `--'))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    expect(rows).toHaveLength(CONFIG_OPTIONS.length);
    for (const option of CONFIG_OPTIONS) {
      const row = rows.find((cells) => cells[1]?.startsWith(`\`--${option.flag} `));
      expect(row, option.flag).toBeDefined();
      expect(row![2]).toBe(`\`${option.env}\``);
      expect(row![3]).toBe(option.defaultValue === "" ? "(none)" : `\`${option.defaultValue}\``);
    }
  });

  it('starts with the two commands a newcomer types', async () => {
    const head = (await readFile(README, 'utf8')).split('\n').slice(0, 8).join('\n');
    expect(head).toContain('```\nnpm install && npm start\nnpm test\n```');
  });
});

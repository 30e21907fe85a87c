import { describe, expect, it } from 'vitest';
import { NameTable } from '../../src/engine/name-table.js';

describe('NameTable', () => {
  it('lists each name once in first-seen order, across columns', () => {
    const table = new NameTable(2);
    const indexes = [table.indexOf('a', 0), table.indexOf('b', 1), table.indexOf('a', 1), table.indexOf('a', 0), table.indexOf('c', 0), table.indexOf('b', 0)];
    expect(indexes).toEqual([0, 1, 0, 0, 2, 1]);
    expect(table.size).toBe(3);
    expect(table.take()).toEqual(['a', 'b', 'c']);
  });

  it('starts empty after take, with no column remembering a name of the last batch', () => {
    const table = new NameTable(2);
    table.indexOf('x', 0);
    table.indexOf('y', 1);
    table.take();
    expect(table.size).toBe(0);
    expect(table.indexOf('y', 1)).toBe(0);
    expect(table.indexOf('x', 0)).toBe(1);
    expect(table.take()).toEqual(['y', 'x']);
  });
});

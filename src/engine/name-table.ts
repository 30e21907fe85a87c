/**
 * The strings a batch crossing threads names (types, subscriptions, consumers, senders), each
 * listed once and referred to by its index. Names come in runs, so each of a few columns remembers
 * the last name it looked up: most lookups are one comparison, not a map lookup.
 */
export class NameTable {
  private names: string[] = [];
  private readonly index = new Map<string, number>();
  private readonly lastNames: Array<string | null>;
  private readonly lastIndexes: number[];

  constructor(columns = 1) {
    this.lastNames = new Array<string | null>(columns).fill(null);
    this.lastIndexes = new Array<number>(columns).fill(0);
  }

  /** Names listed so far. */
  get size(): number {
    return this.names.length;
  }

  /** The index of `name`, listing it if new; `column`: which run it belongs to (0 to columns - 1). */
  indexOf(name: string, column = 0): number {
    if (this.lastNames[column] === name) return this.lastIndexes[column]!;
    let index = this.index.get(name);
    if (index === undefined) {
      index = this.names.length;
      this.names.push(name);
      this.index.set(name, index);
    }
    this.lastNames[column] = name;
    this.lastIndexes[column] = index;
    return index;
  }

  /** The names listed (for the batch being sent); the table starts empty again. */
  take(): string[] {
    const names = this.names;
    this.names = [];
    this.index.clear();
    this.lastNames.fill(null);
    return names;
  }
}

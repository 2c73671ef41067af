// Column formatting as Go's text/tabwriter does it for cilium and kubectl (padding 3, left-aligned).

export interface TableOptions {
  /** Spaces after the widest cell of a column. */
  padding?: number;
  /** Smallest column width, padding included (cilium uses 5). */
  minWidth?: number;
}

/** Rows of cells → lines; every column but the last is padded to one width; no trailing spaces. */
export function formatTable(rows: string[][], opts: TableOptions = {}): string {
  const padding = opts.padding ?? 3;
  const minWidth = opts.minWidth ?? 0;
  const cols = Math.max(0, ...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < cols - 1; c++) {
    const widest = Math.max(0, ...rows.map((r) => (r[c] ?? '').length));
    widths.push(Math.max(widest + padding, minWidth));
  }
  return rows
    .map((r) => r.map((cell, c) => (c < cols - 1 ? cell.padEnd(widths[c]) : cell)).join('').trimEnd())
    .map((l) => l + '\n')
    .join('');
}

/** `Label:` + value lines aligned at a fixed column, as `cilium status` prints them. */
export function formatKeyValues(pairs: Array<[string, string]>, width: number): string {
  return pairs.map(([k, v]) => (v === '' ? k : k.padEnd(width) + v).trimEnd() + '\n').join('');
}

/** Sort key for addresses such as 10.0.0.1:80 or 10.0.0.0/24: numeric by octet, then port/prefix. */
export function addressOrder(a: string, b: string): number {
  const parse = (s: string) => {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:[:/](\d+))?/.exec(s);
    return m ? m.slice(1).map((x) => Number(x ?? 0)) : undefined;
  };
  const pa = parse(a);
  const pb = parse(b);
  if (pa && pb) {
    for (let i = 0; i < 5; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
    return 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

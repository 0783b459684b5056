/** A table as rows of already formatted cells; the first column is left-aligned, the rest right-aligned. */
export interface Table {
  columns: string[];
  rows: string[][];
}

/** Monospace table for the terminal. */
export function textTable({ columns, rows }: Table): string {
  const widths = columns.map((column, c) => Math.max(column.length, ...rows.map((row) => (row[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ").trimEnd();
  return [line(columns), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n") + "\n";
}

export function markdownTable({ columns, rows }: Table): string {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  const line = (cells: string[]) => `| ${cells.map(escape).join(" | ")} |`;
  return [line(columns), `|${columns.map((_, c) => (c === 0 ? " :--- " : " ---: ")).join("|")}|`, ...rows.map(line)].join("\n") + "\n";
}

/** RFC 4180 CSV; numbers are written with full precision so they read back as the same doubles. */
export function csv(columns: string[], rows: (string | number | undefined)[][]): string {
  const cell = (value: string | number | undefined) => {
    const text = value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [columns, ...rows].map((row) => row.map(cell).join(",")).join("\n") + "\n";
}

export interface Summary {
  n: number;
  mean: number;
  /** Population standard deviation (NumPy's default, ddof = 0). */
  std: number;
}

/** Over the defined values (a metric a slice lacks is left out). */
export function summarize(all: readonly (number | undefined)[]): Summary {
  const values = all.filter((v): v is number => v !== undefined);
  const n = values.length;
  if (n === 0) return { n, mean: NaN, std: NaN };
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / n;
  return { n, mean, std: Math.sqrt(variance) };
}

/** "27.31 ± 1.20" with `digits` decimals; "n/a" without values. */
export function formatMeanStd({ n, mean, std }: Summary, digits: number): string {
  if (n === 0) return "n/a";
  if (!Number.isFinite(mean)) return String(mean);
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
}

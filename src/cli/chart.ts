/** What the bench chart shows for one load level. */
export interface ChartSeries {
  label: string;
  /** [percentile, ms] points, percentile 0–100 (100 = max). */
  latencyCurve: [number, number][];
  /** Slices per second. */
  throughput: number;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const PANEL = { width: 440, height: 260, left: 60, top: 40, gap: 90 };
const PLOT = { width: PANEL.width - PANEL.left - 10, height: PANEL.height - 70 };

const escapeXml = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
const fixed = (value: number) => Number(value.toFixed(1));

/** A round axis for values up to `max`: a step of 1, 2, 2.5 or 5 × 10^k and the top tick, at most five steps. */
export function niceAxis(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= rough * (1 - 1e-9)) ?? 10) * power;
  return { top: Number((Math.ceil(max / step - 1e-9) * step).toPrecision(12)), step };
}

/** Percentile p on HdrHistogram's axis: log10(1 / (1 − p)), so 90, 99, 99.9 are evenly spaced; max sits one step past 99.9. */
function percentileAxis(p: number): number {
  return p >= 100 ? 3.5 : Math.min(3, Math.log10(100 / (100 - p)));
}

function axes(x0: number, { top, step }: { top: number; step: number }, yLabel: string): string[] {
  const parts: string[] = [];
  const bottom = PANEL.top + PLOT.height;
  for (let i = 0; i * step <= top + 1e-9; i++) {
    const y = fixed(bottom - ((i * step) / top) * PLOT.height);
    parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PLOT.width}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${+(i * step).toPrecision(6)}</text>`);
  }
  parts.push(`<line x1="${x0}" y1="${PANEL.top}" x2="${x0}" y2="${bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${x0}" y1="${bottom}" x2="${x0 + PLOT.width}" y2="${bottom}" stroke="#333"/>`);
  parts.push(
    `<text transform="translate(${x0 - 45} ${PANEL.top + PLOT.height / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  return parts;
}

/**
 * An SVG with two panels: the latency distribution of each level (latency
 * against percentile on a log(1/(1−p)) axis, as HdrHistogram plots it) and
 * throughput per level as bars, with the raw ONNX Runtime throughput as a
 * dashed line when known.
 */
export function benchChart(title: string, series: readonly ChartSeries[], rawThroughput?: number): string {
  const bottom = PANEL.top + PLOT.height;
  const parts: string[] = [];
  const width = 2 * PANEL.width + PANEL.gap;
  const height = PANEL.height + 30;

  // Left: latency distribution.
  const latencyAxis = niceAxis(Math.max(0, ...series.flatMap((s) => s.latencyCurve.map(([, ms]) => ms))));
  const latencyMax = latencyAxis.top;
  const x0 = PANEL.left;
  parts.push(...axes(x0, latencyAxis, "latency (ms)"));
  for (const [p, label] of [[0, "0%"], [90, "90%"], [99, "99%"], [99.9, "99.9%"], [100, "max"]] as const) {
    const x = fixed(x0 + (percentileAxis(p) / 3.5) * PLOT.width);
    parts.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle">${label}</text>`);
  }
  parts.push(`<text x="${x0 + PLOT.width / 2}" y="${bottom + 34}" text-anchor="middle">percentile</text>`);
  series.forEach((s, i) => {
    const points = s.latencyCurve
      .map(([p, ms]) => `${fixed(x0 + (percentileAxis(p) / 3.5) * PLOT.width)},${fixed(bottom - (ms / latencyMax) * PLOT.height)}`)
      .join(" ");
    parts.push(`<polyline points="${points}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"/>`);
    const ly = PANEL.top + 4 + i * 16;
    parts.push(`<rect x="${x0 + 10}" y="${ly}" width="12" height="3" fill="${COLOURS[i % COLOURS.length]}"/>`);
    parts.push(`<text x="${x0 + 28}" y="${ly + 5}">${escapeXml(s.label)}</text>`);
  });

  // Right: throughput bars.
  const x1 = PANEL.width + PANEL.gap + PANEL.left - 40;
  const throughputAxis = niceAxis(Math.max(rawThroughput ?? 0, ...series.map((s) => s.throughput)) * 1.08);
  const throughputMax = throughputAxis.top;
  parts.push(...axes(x1, throughputAxis, "slices / s"));
  const slot = PLOT.width / Math.max(1, series.length);
  series.forEach((s, i) => {
    const h = (s.throughput / throughputMax) * PLOT.height;
    const x = fixed(x1 + i * slot + slot * 0.2);
    parts.push(`<rect x="${x}" y="${fixed(bottom - h)}" width="${fixed(slot * 0.6)}" height="${fixed(h)}" fill="${COLOURS[i % COLOURS.length]}"/>`);
    parts.push(`<text x="${fixed(x1 + (i + 0.5) * slot)}" y="${bottom + 16}" text-anchor="middle">${escapeXml(s.label)}</text>`);
    parts.push(`<text x="${fixed(x1 + (i + 0.5) * slot)}" y="${fixed(bottom - h - 4)}" text-anchor="middle">${s.throughput.toFixed(1)}</text>`);
  });
  if (rawThroughput !== undefined) {
    const y = fixed(bottom - (rawThroughput / throughputMax) * PLOT.height);
    parts.push(`<line x1="${x1}" y1="${y}" x2="${x1 + PLOT.width}" y2="${y}" stroke="#000" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${x1 + PLOT.width}" y="${y - 4}" text-anchor="end">raw ONNX Runtime ${rawThroughput.toFixed(1)}/s</text>`);
  }

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}

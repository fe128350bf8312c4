// The history as a line chart's geometry, for views/_chart.njk to draw as inline SVG (no
// script, no CDN: it works offline and under the strict CSP). Rates are per minute, so
// the three windows read alike; the x axis is relative ("−1 h" … "now"), so it needs no
// time zone.
import { SERIES, WINDOWS, type History, type Series } from "./history.ts";

export const CHART = { width: 420, height: 180, left: 34, right: 8, top: 10, bottom: 24 };

export interface Chart {
  lines: { series: Series; points: string; total: number }[];
  /** The y axis' top, in jobs per minute: a round number above the largest rate. */
  yMax: number;
  xLabels: { x: number; text: string }[];
  rows: ({ at: string } & Record<Series, number>)[];
  /**
   * Each step as a band across the plot, focusable, with its values as its name and
   * <title>: hovering or tabbing to it reads them without a script.
   */
  points: { x: number; width: number; label: string; dots: { series: Series; cx: number; cy: number }[] }[];
}

export function chartOf(history: History): Chart {
  const perMinute = 60_000 / history.bucketMs;
  const rows = history.buckets.map(
    (b) =>
      ({ at: b.at, ...Object.fromEntries(SERIES.map((s) => [s, round(b[s] * perMinute)])) }) as Chart["rows"][number],
  );
  const largest = Math.max(0, ...rows.flatMap((r) => SERIES.map((s) => r[s])));
  const yMax = niceCeiling(largest);
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (i: number) => round(left + (rows.length <= 1 ? plotW : (i / (rows.length - 1)) * plotW));
  const y = (v: number) => round(top + plotH - (v / yMax) * plotH);
  const lines = SERIES.map((series) => ({
    series,
    total: history.totals[series],
    points: rows.map((r, i) => `${x(i)},${y(r[series])}`).join(" "),
  }));
  const span = WINDOWS[history.window].label;
  const xLabels = [
    { x: left, text: `−${span}` },
    { x: left + plotW / 2, text: `−${halfOf(history.window)}` },
    { x: width - right, text: "now" },
  ];
  const step = rows.length <= 1 ? plotW : plotW / (rows.length - 1);
  const points = rows.map((r, i) => {
    const from = Math.max(left, x(i) - step / 2);
    const to = Math.min(width - right, x(i) + step / 2);
    const values = SERIES.map((s) => `${s} ${r[s]}`).join(", ");
    return {
      x: round(from),
      width: round(to - from),
      label: `${r.at.replace("T", " ").slice(0, 16)} UTC: ${values} per minute`,
      dots: SERIES.map((s) => ({ series: s, cx: x(i), cy: y(r[s]) })),
    };
  });
  return { lines, yMax, xLabels, rows, points };
}

function halfOf(window: History["window"]): string {
  return { "15m": "7½ min", "1h": "30 min", "1d": "12 hours" }[window];
}

/** 1, 2, 5, 10, 20, 50…: the smallest at or above value (at least 1). */
function niceCeiling(value: number): number {
  if (value <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((n) => n >= value)!;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

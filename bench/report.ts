// Turns the runs into medians, ratios to the floor of the same run, and targets; prints a
// table and returns the JSON. A number that could not be measured is NaN, and a target
// with NaN is missed: a failed run never passes quietly.
import { median } from "./load.ts";
import { PAGES, type FloorResult, type PageRun, type PipelineResult } from "./scenarios.ts";

export const LATENCIES = [0, 100] as const;
export type Latency = (typeof LATENCIES)[number];

export interface RunData {
  floor?: FloorResult;
  brokerMsgsPerSec?: number;
  pipeline: Partial<Record<Latency, PipelineResult>>;
  errors: string[];
}

export interface Target {
  name: string;
  value: number;
  unit: string;
  met: boolean;
  note?: string;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits));
const nan = (n: number | undefined) => n ?? NaN;

export function report(header: string, runs: RunData[], pages: PageRun[], pageError: string | undefined) {
  const lines: string[] = [header, ""];
  const row = (
    label: string,
    values: (number | undefined)[],
    digits = 0,
    med = median(values.map(nan).filter((v) => !Number.isNaN(v))),
  ) =>
    lines.push(
      `${label.padEnd(40)}${values.map((v) => fmt(v, digits).padStart(10)).join("")}${fmt(med, digits).padStart(12)}`,
    );
  lines.push(`${"".padEnd(40)}${runs.map((_, i) => `run ${i + 1}`.padStart(10)).join("")}${"median".padStart(12)}`);
  const floors = runs.map((r) => r.floor?.reqPerSec);
  row("floor: bare Express POST, req/s", floors);
  row(
    "broker publish-confirm (noDelay), msg/s",
    runs.map((r) => r.brokerMsgsPerSec),
  );

  const medians: Record<string, number> = {};
  for (const ms of LATENCIES) {
    const at = runs.map((r) => r.pipeline[ms]);
    const pick = (f: (p: PipelineResult) => number) => at.map((p) => (p ? f(p) : undefined));
    const valid = (xs: (number | undefined)[]) => median(xs.map(nan).filter((v) => !Number.isNaN(v)));
    const ratios = at.map((p, i) => (p && floors[i] ? (100 * p.jobsPerSec) / floors[i]! : undefined));
    lines.push(`dog.ceo stand-in at ${ms} ms:`);
    row(
      "  end to end, jobs/s",
      pick((p) => p.jobsPerSec),
    );
    row("  end to end, % of the floor", ratios, 1);
    row(
      "  cold (fresh processes), jobs/s",
      pick((p) => p.cold.jobsPerSec),
    );
    row(
      "  cold, % of the floor",
      at.map((p, i) => (p && floors[i] ? (100 * p.cold.jobsPerSec) / floors[i]! : undefined)),
      1,
    );
    row(
      "  cold submit p99, ms",
      pick((p) => p.cold.submitP99Ms),
      1,
    );
    row(
      "  submits, req/s",
      pick((p) => p.submit.reqPerSec),
    );
    row(
      "  submit p50, ms",
      pick((p) => p.submit.p50Ms),
      1,
    );
    row(
      "  submit p99, ms",
      pick((p) => p.submit.p99Ms),
      1,
    );
    for (const proc of ["web", "worker"] as const) {
      row(
        `  ${proc} RSS after the load, MB`,
        pick((p) => p[proc].rssMb),
      );
      row(
        `  ${proc} CPU after the load, s`,
        pick((p) => p[proc].cpuS),
        1,
      );
      row(
        `  ${proc} CPU during the load, ms/job`,
        pick((p) => p[proc].cpuMsPerJob),
        2,
      );
    }
    medians[`ratio${ms}`] = valid(ratios);
    medians[`p99_${ms}`] = valid(pick((p) => p.submit.p99Ms));
    medians[`rssWeb${ms}`] = valid(pick((p) => p.web.rssMb));
    medians[`rssWorker${ms}`] = valid(pick((p) => p.worker.rssMb));
  }

  lines.push("pages, p99 ms at 10 clients (nearly empty / 100,000 photos + 20,000 tasks / ratio):");
  const pageRatios: Record<string, number> = {};
  for (const page of PAGES) {
    const empty = median(pages.map((p) => p[page].emptyP99Ms));
    const full = median(pages.map((p) => p[page].fullP99Ms));
    pageRatios[page] = median(pages.map((p) => p[page].fullP99Ms / p[page].emptyP99Ms));
    lines.push(
      `  ${page.padEnd(38)}${fmt(empty, 1).padStart(10)}${fmt(full, 1).padStart(10)}${fmt(pageRatios[page], 2).padStart(10)}`,
    );
  }
  if (pageError) lines.push(`  FAILED: ${pageError}`);

  const targets: Target[] = [
    {
      name: "end to end at 0 ms >= 17% of the floor",
      value: medians.ratio0!,
      unit: "%",
      met: medians.ratio0! >= 17,
      note: "aim 25%",
    },
    {
      name: "end to end at 100 ms >= 14% of the floor",
      value: medians.ratio100!,
      unit: "%",
      met: medians.ratio100! >= 14,
    },
    ...LATENCIES.map((ms) => ({
      name: `submit p99 at ${ms} ms <= 50 ms`,
      value: medians[`p99_${ms}`]!,
      unit: "ms",
      met: medians[`p99_${ms}`]! <= 50,
    })),
    ...(["web", "worker"] as const).map((proc) => {
      const limit = proc === "web" ? 150 : 120;
      const value = Math.max(...LATENCIES.map((ms) => medians[`rss${proc === "web" ? "Web" : "Worker"}${ms}`]!));
      return { name: `RSS ${proc} after the load <= ${limit} MB`, value, unit: "MB", met: value <= limit };
    }),
    ...PAGES.map((page) => ({
      name: `${page} p99 full / empty <= 1.5`,
      value: pageRatios[page]!,
      unit: "x",
      met: pageRatios[page]! <= 1.5,
    })),
  ];
  const errors = runs.flatMap((r, i) => r.errors.map((e) => `run ${i + 1}: ${e}`));
  targets.push({
    name: "every run finished",
    value: errors.length + (pageError ? 1 : 0),
    unit: "failed",
    met: errors.length === 0 && !pageError,
  });

  lines.push("", "targets:");
  for (const t of targets)
    lines.push(
      `  ${t.name.padEnd(46)}${`${fmt(t.value, t.unit === "x" ? 2 : t.unit === "failed" ? 0 : 1)} ${t.unit}`.padStart(12)}  ${t.met ? "met" : "MISSED"}${t.note ? ` (${t.note})` : ""}`,
    );
  for (const e of errors) lines.push(`  ${e}`);
  return { text: lines.join("\n"), targets, failed: targets.some((t) => !t.met) };
}

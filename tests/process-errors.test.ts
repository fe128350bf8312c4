// An entry file's process (lib/platform/shutdown.ts runProcess) that meets a promise nobody handled or
// an exception nobody caught still ends, as Node would, but logs why first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { projectRoot } from "../lib/platform/config.ts";

/** Runs a process whose start succeeds and then fails the given way; resolves with its exit and output. */
function runFailing(failure: string): Promise<{ code: number | null; output: string }> {
  const script = `
    import { runProcess } from "./lib/platform/shutdown.ts";
    runProcess("probe", async () => {
      setTimeout(() => { ${failure} }, 10);
      return { stop: async () => {} };
    });`;
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: "json", LOG_LEVEL: "info" };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: projectRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

function fatalLine(output: string): { level: number; msg: string; err?: { message?: string } } | undefined {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message?: string } })
    .find((entry) => entry.level === 60);
}

test("when a promise rejects and nobody handles it, the process logs it as fatal and exits 1", async () => {
  const { code, output } = await runFailing(`void Promise.reject(new Error("the broker went away mid-resume"));`);
  assert.equal(code, 1, output);
  const fatal = fatalLine(output);
  assert.ok(fatal, `no fatal log line in:\n${output}`);
  assert.match(fatal.msg, /unhandled promise rejection/);
  assert.equal(fatal.err?.message, "the broker went away mid-resume");
});

test("when an exception is thrown and nobody catches it, the process logs it as fatal and exits 1", async () => {
  const { code, output } = await runFailing(`throw new Error("a timer callback broke");`);
  assert.equal(code, 1, output);
  const fatal = fatalLine(output);
  assert.ok(fatal, `no fatal log line in:\n${output}`);
  assert.match(fatal.msg, /uncaught exception/);
  assert.equal(fatal.err?.message, "a timer callback broke");
});

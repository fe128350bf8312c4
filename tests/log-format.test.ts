// LOG_FORMAT=pretty needs pino-pretty, a dev dependency: where it is not installed (a
// production install, the image) web and worker stop with one line naming the problem.
// The compiled entry files run from a directory of their own whose node_modules holds every
// package of this project's but pino-pretty, as `npm install --omit=dev` leaves it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { projectRoot } from "../lib/platform/config.ts";
import { buildAll } from "../scripts/build.ts";

/** Runs a file on plain node with LOG_FORMAT=pretty and only the basics inherited. */
function runPretty(file: string, cwd: string) {
  const env = {
    PATH: process.env.PATH ?? "",
    LOG_FORMAT: "pretty",
    LOG_LEVEL: "info",
    DATABASE_URL: "file:./never-opened.db",
    PORT: "0",
  };
  return spawnSync(process.execPath, [file], { cwd, env, encoding: "utf8", timeout: 20_000 });
}

describe("LOG_FORMAT=pretty where pino-pretty is not installed", () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "gendog-no-pretty-"));
    await buildAll(path.join(dir, "dist"));
    copyFileSync(path.join(projectRoot, "package.json"), path.join(dir, "package.json")); // "type": "module"
    mkdirSync(path.join(dir, "node_modules"));
    for (const name of readdirSync(path.join(projectRoot, "node_modules"))) {
      if (name === "pino-pretty" || name === ".bin") continue;
      symlinkSync(path.join(projectRoot, "node_modules", name), path.join(dir, "node_modules", name));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of ["web", "worker"]) {
    test(`stops the compiled ${name} with one line naming LOG_FORMAT and pino-pretty, and no stack trace`, () => {
      const run = runPretty(path.join("dist", `${name}.js`), dir);
      assert.equal(run.status, 1, `exit ${run.status} (${run.signal ?? "no signal"}): ${run.stderr}`);
      assert.equal(run.stdout, "");
      const lines = run.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `more than one line:\n${run.stderr}`);
      assert.match(lines[0], /^gendog: configuration error: LOG_FORMAT is pretty, but pino-pretty is not installed/);
      assert.match(lines[0], /LOG_FORMAT .*json/, "the line says what to do instead");
    });
  }
});

describe("LOG_FORMAT=pretty where pino-pretty is installed", () => {
  test("logs through pino-pretty", () => {
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { createLogger } from ${JSON.stringify(path.join(projectRoot, "lib", "platform", "logger.ts"))}; createLogger("info", "probe", "pretty").info("hello from the probe");`,
      ],
      {
        cwd: projectRoot,
        encoding: "utf8",
        timeout: 20_000,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /INFO.*\(probe\): hello from the probe/);
    assert.doesNotMatch(run.stdout, /^\{/m, "a JSON line, not pretty output");
  });
});

/* eslint-disable @typescript-eslint/no-explicit-any -- a parsed compose file has no type of its own */
// The deployment files (docker-compose.yml, Dockerfile, .dockerignore, .env.example) against
// what the app really reads and runs: lib/platform/config.ts is the one list of environment
// variables, every environment these files set up must be one loadConfig accepts, and the
// image holds what the compiled entry files need and nothing the tests or the bench use.
// There is no Docker engine here: the files are read as Docker would read them.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";
import { build } from "esbuild";
import { parse } from "yaml";
import { databaseFile, loadConfig, projectRoot } from "../lib/platform/config.ts";
import { ENTRIES } from "../scripts/build.ts";

type Env = Record<string, string>;

import { startCommand } from "../scripts/startCommand.ts";

const read = (file: string) => readFileSync(path.join(projectRoot, file), "utf8");

/** Every variable loadConfig reads, as it runs: an environment that records each name asked for. */
function configVariables(): Set<string> {
  const names = new Set<string>();
  loadConfig(new Proxy({} as Env, { get: (_target, name) => void (typeof name === "string" && names.add(name)) }));
  return names;
}

const compose = parse(read("docker-compose.yml")) as {
  services: Record<string, any>;
  volumes?: Record<string, unknown>;
};
const service = (name: string) => {
  const s = compose.services?.[name];
  assert.ok(s, `docker-compose.yml has no service '${name}'`);
  return s;
};

/** `environment:` as a map or as a list of KEY=VALUE. */
function environmentOf(svc: any): Env {
  const raw = svc.environment ?? {};
  const env: Env = {};
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const [key, ...rest] = String(item).split("=");
      env[key] = rest.join("=");
    }
  } else {
    for (const [key, value] of Object.entries(raw)) env[key] = value == null ? "" : String(value);
  }
  return env;
}

/** A compose duration ("10s", "1m30s") in seconds. */
function seconds(duration: string | undefined): number {
  let total = 0;
  for (const [, n, unit] of String(duration ?? "").matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
    total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as "ms" | "s" | "m" | "h"];
  return total;
}

function commandOf(svc: any): string {
  return Array.isArray(svc.command) ? svc.command.join(" ") : String(svc.command ?? "");
}

/** Published ports as { host, container } pairs, from short or long syntax. */
function portsOf(svc: any): { host?: number; container: number }[] {
  return (svc.ports ?? []).map((p: any) => {
    if (typeof p === "object")
      return { host: p.published == null ? undefined : Number(p.published), container: Number(p.target) };
    const parts = String(p)
      .replace(/\/(tcp|udp)$/, "")
      .split(":");
    const container = Number(parts.at(-1));
    return { host: parts.length >= 2 ? Number(parts.at(-2)) : undefined, container };
  });
}

/** Mounts of named volumes (declared at the top level) as { volume, target }. */
function namedVolumesOf(svc: any): { volume: string; target: string }[] {
  const declared = Object.keys(compose.volumes ?? {});
  const mounts = (svc.volumes ?? []).map((v: any) =>
    typeof v === "object"
      ? { source: String(v.source ?? ""), target: String(v.target) }
      : { source: String(v).split(":")[0], target: String(v).split(":")[1] },
  );
  return mounts
    .filter((m: { source: string }) => declared.includes(m.source))
    .map((m: { source: string; target: string }) => ({ volume: m.source, target: m.target }));
}

/** ENV instructions of the runtime (last) stage of the Dockerfile. */
function dockerfileEnv(): Env {
  const lines = read("Dockerfile")
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/);
  const lastFrom = lines.map((l) => /^\s*FROM\b/i.test(l)).lastIndexOf(true);
  const env: Env = {};
  for (const line of lines.slice(lastFrom)) {
    const m = /^\s*ENV\s+(.*)$/i.exec(line);
    if (!m) continue;
    for (const pair of m[1].trim().split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

describe("docker-compose.yml", () => {
  test("defines the rabbitmq, web and worker services", () => {
    for (const name of ["rabbitmq", "web", "worker"]) service(name);
  });

  test("runs RabbitMQ with the management plugin, AMQP and the UI published, and its data in a named volume", () => {
    const rabbit = service("rabbitmq");
    const image = /^rabbitmq:(\d+)(\.\d+)*-management$/.exec(rabbit.image);
    assert.ok(image, `rabbitmq runs ${rabbit.image}, not a management image`);
    assert.ok(Number(image[1]) >= 4, `${rabbit.image}: RabbitMQ 3.x is out of community support`);
    const ports = portsOf(rabbit);
    for (const port of [5672, 15672]) {
      const published = ports.find((p) => p.container === port);
      assert.ok(published, `port ${port} is not published`);
      assert.equal(published.host, port, `port ${port} is published on another host port`);
    }
    assert.deepEqual(
      namedVolumesOf(rabbit).map((v) => v.target),
      ["/var/lib/rabbitmq"],
    );
  });

  test("lets web and worker start only once RabbitMQ answers its health check", () => {
    assert.ok(service("rabbitmq").healthcheck?.test, "rabbitmq has no healthcheck");
    for (const name of ["web", "worker"]) {
      assert.equal(
        service(name).depends_on?.rabbitmq?.condition,
        "service_healthy",
        `${name} does not wait for a healthy rabbitmq`,
      );
    }
  });

  test("checks web and worker health with the compiled health check for their role, given time for its 5 s heartbeat wait", () => {
    assert.ok("healthcheck" in ENTRIES, "npm run build does not build dist/healthcheck.js");
    for (const name of ["web", "worker"]) {
      const check = service(name).healthcheck;
      assert.ok(check, `${name} has no healthcheck`);
      assert.deepEqual(check.test, ["CMD", "node", "dist/healthcheck.js", name]);
      assert.ok(
        seconds(check.timeout) >= 8,
        `${name}'s healthcheck timeout ${check.timeout} is shorter than the check may take`,
      );
      assert.ok(
        seconds(check.start_period) >= 30,
        `${name} gets no start period for its migrations and broker connection`,
      );
    }
  });

  test("builds web and worker from the project's Dockerfile and runs their entry files with node under an init", () => {
    for (const name of ["web", "worker"] as const) {
      const build = service(name).build;
      assert.ok(build, `${name} has no build`);
      const context = typeof build === "string" ? build : (build.context ?? ".");
      const dockerfile = typeof build === "string" ? "Dockerfile" : (build.dockerfile ?? "Dockerfile");
      assert.equal(
        path.resolve(projectRoot, context, dockerfile),
        path.join(projectRoot, "Dockerfile"),
        `${name} builds from another Dockerfile`,
      );
      assert.ok(name in ENTRIES, `npm run build builds no dist/${name}.js`);
      assert.equal(
        commandOf(service(name)),
        startCommand(name),
        `${name} does not run its compiled entry file as npm start does`,
      );
      assert.equal(service(name).init, true, "signals reach node, which drains before exiting");
    }
  });

  test("publishes the web port, which the image listens on", () => {
    assert.ok(
      portsOf(service("web")).some((p) => p.container === 3000 && p.host === 3000),
      "web does not publish 3000:3000",
    );
  });

  test("gives web and worker the same named volume and points DATABASE_URL at a file inside it", () => {
    const mounts = ["web", "worker"].map((name) => {
      const config = loadConfig(environmentOf(service(name)));
      const dir = path.posix.dirname(databaseFile(config.databaseUrl));
      const mount = namedVolumesOf(service(name)).find((v) => dir === v.target || dir.startsWith(`${v.target}/`));
      assert.ok(mount, `${name}'s database ${config.databaseUrl} is not on a named volume`);
      return { volume: mount.volume, file: config.databaseUrl };
    });
    assert.deepEqual(mounts[0], mounts[1], "web and worker do not open the same database file on the same volume");
  });

  test("connects web and worker to the rabbitmq service as its configured non-guest user", () => {
    const rabbitEnv = environmentOf(service("rabbitmq"));
    const user = rabbitEnv.RABBITMQ_DEFAULT_USER;
    assert.ok(user && user !== "guest", "rabbitmq must set RABBITMQ_DEFAULT_USER to a user other than guest");
    for (const name of ["web", "worker"]) {
      const url = new URL(loadConfig(environmentOf(service(name))).amqpUrl);
      assert.equal(url.hostname, "rabbitmq", `${name}'s AMQP_URL does not point at the rabbitmq service`);
      assert.notEqual(
        decodeURIComponent(url.username),
        "guest",
        `${name} connects as guest, which RabbitMQ refuses from other hosts`,
      );
      assert.equal(decodeURIComponent(url.username), user);
      assert.equal(decodeURIComponent(url.password), rabbitEnv.RABBITMQ_DEFAULT_PASS);
    }
  });

  test("sets on web and worker only variables that lib/platform/config.ts reads", () => {
    const known = configVariables();
    for (const name of ["web", "worker"]) {
      const unknown = Object.keys(environmentOf(service(name))).filter((key) => !known.has(key));
      assert.deepEqual(unknown, [], `${name} sets variables GenDog never reads`);
    }
  });

  test("gives web and worker, on top of the image's ENV, a configuration loadConfig accepts", () => {
    const image = dockerfileEnv();
    assert.equal(image.NODE_ENV, "production");
    assert.equal(image.HOST, "0.0.0.0");
    for (const name of ["web", "worker"]) {
      const config = loadConfig({ ...image, ...environmentOf(service(name)) });
      assert.equal(config.env, "production");
      assert.equal(config.host, "0.0.0.0");
      assert.equal(config.port, 3000);
    }
  });
});

describe(".env.example", () => {
  const text = read(".env.example");
  const example = parseEnv(text);

  test("documents every variable lib/platform/config.ts reads, and nothing else", () => {
    const documented = Object.keys(example).sort();
    assert.deepEqual(documented, [...configVariables()].sort());
  });

  test("puts a comment line directly above each variable", () => {
    const lines = text.split(/\r?\n/);
    for (const name of Object.keys(example)) {
      const at = lines.findIndex((l) => l.startsWith(`${name}=`));
      assert.ok(at > 0 && lines[at - 1].trim().startsWith("#"), `${name} has no comment line above it`);
    }
  });

  test("holds values loadConfig accepts, which are exactly the defaults", () => {
    const fromExample = loadConfig(example);
    const defaults = loadConfig({});
    assert.deepEqual({ ...fromExample, csrfSecret: "" }, { ...defaults, csrfSecret: "" });
  });

  test("warns that the guest broker account works only from localhost", () => {
    const lines = text.split(/\r?\n/);
    const at = lines.findIndex((l) => l.startsWith("AMQP_URL="));
    let start = at;
    while (start > 0 && lines[start - 1].startsWith("#")) start--;
    const comment = lines.slice(start, at).join("\n");
    assert.match(comment, /guest/i);
    assert.match(comment, /localhost/i);
    assert.match(comment, /never/i);
  });
});

/**
 * The Dockerfile's instructions, continuation lines joined and comments dropped, by stage (-1: before the first FROM).
 */
function dockerfileInstructions(): { stage: number; keyword: string; args: string }[] {
  const lines = read("Dockerfile")
    .split(/\r?\n/)
    .filter((l) => !/^\s*#/.test(l));
  const joined = lines.join("\n").replace(/\\\n/g, " ").split("\n");
  let stage = -1;
  const out: { stage: number; keyword: string; args: string }[] = [];
  for (const line of joined) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1].toUpperCase();
    if (keyword === "FROM") stage++;
    out.push({ stage, keyword, args: m[2].trim().replace(/\s+/g, " ") });
  }
  return out;
}

/** COPY instructions of one stage as { from, sources } with sources relative to the context or to /app. */
function copiesOf(stage: number): { from?: string; sources: string[] }[] {
  return dockerfileInstructions()
    .filter((i) => i.stage === stage && i.keyword === "COPY")
    .map((i) => {
      assert.ok(!i.args.startsWith("["), `COPY ${i.args}: this test reads the shell form only`);
      const words = i.args.split(" ");
      const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
      const paths = words.filter((w) => !w.startsWith("--"));
      return {
        from,
        sources: paths.slice(0, -1).map((p) => path.posix.normalize(p.replace(/^\/app\//, "")).replace(/\/$/, "")),
      };
    });
}

const covers = (source: string, file: string) => source === "." || file === source || file.startsWith(`${source}/`);

/** prisma.config.ts and the project files it imports, transitively: what the Prisma CLI loads. */
function prismaConfigFiles(): string[] {
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const [, spec] of read(file).matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g))
      visit(path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)));
  };
  visit("prisma.config.ts");
  return [...files];
}

describe("Dockerfile", () => {
  const instructions = dockerfileInstructions();
  const froms = instructions.filter((i) => i.keyword === "FROM");
  const runtime = froms.length - 1;
  const inRuntime = (keyword: string) => instructions.filter((i) => i.stage === runtime && i.keyword === keyword);
  const buildStages = froms.slice(0, -1).map((f, index) => ({ index, name: / AS (\S+)$/i.exec(f.args)?.[1] }));

  test("builds in stages on Node 24 LTS, the runtime on the same base as the build (better-sqlite3 is compiled there)", () => {
    const args = Object.fromEntries(
      instructions
        .filter((i) => i.stage === -1 && i.keyword === "ARG")
        .map((i) => i.args.split("=") as [string, string]),
    );
    const images = froms.map((f) =>
      f.args.split(" ")[0].replace(/^\$\{?(\w+)\}?$/, (_, name: string) => args[name] ?? name),
    );
    assert.ok(froms.length >= 2, "the Dockerfile is not multi-stage");
    for (const image of images)
      assert.match(image, /^node:24(\.[\d.]+)?(-[a-z]+)*-slim$/, `${image} is not a slim Node 24 image`);
    assert.equal(new Set(images).size, 1, `stages on different bases: ${images.join(", ")}`);
  });

  test("compiles in a build stage and keeps only production dependencies", () => {
    const run = instructions
      .filter((i) => i.stage < runtime && i.keyword === "RUN")
      .map((i) => i.args)
      .join(" && ");
    assert.match(run, /\bnpm ci\b/);
    assert.match(run, /\bnpm run build\b/);
    assert.match(run, /\bnpm prune --omit=dev\b/);
  });

  test("copies into the build stage every source file the bundles are made of, and what the install's prisma generate reads before npm ci", async () => {
    const result = await build({
      entryPoints: Object.values(ENTRIES).map((e) => path.join(projectRoot, e)),
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      write: false,
      metafile: true,
      outdir: "out",
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs)
      .map((f) => path.relative(projectRoot, path.resolve(f)))
      .filter((f) => !f.startsWith("generated/") && !f.startsWith("node_modules/"));
    assert.ok(
      inputs.includes("web.ts") && inputs.some((f) => f.startsWith("routes/")),
      "esbuild's metafile lists no sources",
    );
    const copied = buildStages.flatMap((s) =>
      copiesOf(s.index)
        .filter((c) => !c.from)
        .flatMap((c) => c.sources),
    );
    for (const file of [...inputs, "scripts/build.ts", "tsconfig.json"])
      assert.ok(
        copied.some((src) => covers(src, file)),
        `${file} is not copied into the build stage`,
      );
    const beforeInstall = instructions.slice(
      0,
      instructions.findIndex((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args)),
    );
    const early = beforeInstall.filter((i) => i.keyword === "COPY").flatMap((i) => i.args.split(" ").slice(0, -1));
    for (const file of ["package.json", "package-lock.json", "prisma", ...prismaConfigFiles()]) {
      assert.ok(
        early.some((src) => covers(src.replace(/\/$/, ""), file)),
        `${file} is not there yet when npm ci runs prisma generate`,
      );
    }
  });

  test("puts the runtime files in the final image, and no sources, tests, dev tools or bench", () => {
    const sources = copiesOf(runtime).flatMap((c) => c.sources);
    const needed = [
      "package.json",
      "node_modules",
      "dist/web.js",
      "dist/worker.js",
      "dist/healthcheck.js",
      "views",
      "static",
      "prisma/migrations",
      "prisma/postgres/migrations",
      ...prismaConfigFiles(),
    ];
    for (const file of needed)
      assert.ok(
        sources.some((src) => covers(src, file)),
        `${file} is not copied into the final image`,
      );
    for (const unwanted of ["tests", "dev", "bench", "scripts", "routes", "tasks", "generated", "web.ts", "app.ts"]) {
      assert.ok(!sources.some((src) => covers(src, unwanted)), `${unwanted} is copied into the final image`);
    }
    for (const file of prismaConfigFiles())
      assert.ok(existsSync(path.join(projectRoot, file)), `${file} does not exist`);
  });

  test("runs the compiled web as a non-root user, with a HEALTHCHECK through the compiled health check", () => {
    const user = inRuntime("USER").at(-1)?.args;
    assert.ok(user && !["root", "0", "0:0"].includes(user), `the final stage runs as ${user ?? "root"}`);
    assert.deepEqual(JSON.parse(inRuntime("CMD").at(-1)?.args ?? "null"), startCommand("web").split(" "));
    const check = inRuntime("HEALTHCHECK").at(-1)?.args ?? "";
    assert.match(check, /CMD \["node", "dist\/healthcheck\.js"\]$/);
    assert.ok(
      seconds(/--timeout=(\S+)/.exec(check)?.[1]) >= 8,
      "the HEALTHCHECK timeout is shorter than a worker's check may take",
    );
  });
});

describe(".dockerignore", () => {
  const ignored = read(".dockerignore")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));

  test("keeps tests, dev tools, the bench, installed and built files and local databases out of the build context", () => {
    for (const name of ["tests", "dev", "bench", "node_modules", "generated", "dist", "**/*.db", ".env"])
      assert.ok(ignored.includes(name), `${name} is not ignored`);
  });

  test("ignores nothing the Dockerfile copies from the context", () => {
    for (const stage of froms()) {
      for (const src of copiesOf(stage)
        .filter((c) => !c.from)
        .flatMap((c) => c.sources)) {
        assert.ok(!ignored.includes(src) && !ignored.includes(src.split("/")[0]), `${src} is copied but ignored`);
      }
    }
  });

  function froms(): number[] {
    return dockerfileInstructions()
      .filter((i) => i.keyword === "FROM")
      .map((i) => i.stage);
  }
});

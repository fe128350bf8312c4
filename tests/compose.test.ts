// The deployment files (docker-compose.yml, Dockerfile, .env.example) against what the
// app really reads: lib/config.ts is the one list of environment variables, and every
// environment these files set up must be one loadConfig accepts.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";
import { parse } from "yaml";
import { databaseFile, loadConfig, projectRoot } from "../lib/config.ts";

type Env = Record<string, string>;

const read = (file: string) => readFileSync(path.join(projectRoot, file), "utf8");

/** Every variable lib/config.ts reads: `env.NAME` and `helper(env, "NAME", ...)`. */
function configVariables(): Set<string> {
  const source = read("lib/config.ts");
  const names = new Set<string>();
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1]);
  for (const m of source.matchAll(/\(\s*env\s*,\s*"([A-Z][A-Z0-9_]*)"/g)) names.add(m[1]);
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

function commandOf(svc: any): string {
  return Array.isArray(svc.command) ? svc.command.join(" ") : String(svc.command ?? "");
}

/** Published ports as { host, container } pairs, from short or long syntax. */
function portsOf(svc: any): { host?: number; container: number }[] {
  return (svc.ports ?? []).map((p: any) => {
    if (typeof p === "object") return { host: p.published == null ? undefined : Number(p.published), container: Number(p.target) };
    const parts = String(p).replace(/\/(tcp|udp)$/, "").split(":");
    const container = Number(parts.at(-1));
    return { host: parts.length >= 2 ? Number(parts.at(-2)) : undefined, container };
  });
}

/** Mounts of named volumes (declared at the top level) as { volume, target }. */
function namedVolumesOf(svc: any): { volume: string; target: string }[] {
  const declared = Object.keys(compose.volumes ?? {});
  const mounts = (svc.volumes ?? []).map((v: any) =>
    typeof v === "object" ? { source: String(v.source ?? ""), target: String(v.target) } : { source: String(v).split(":")[0], target: String(v).split(":")[1] },
  );
  return mounts.filter((m: { source: string }) => declared.includes(m.source)).map((m: { source: string; target: string }) => ({ volume: m.source, target: m.target }));
}

/** ENV instructions of the runtime (last) stage of the Dockerfile. */
function dockerfileEnv(): Env {
  const lines = read("Dockerfile").replace(/\\\r?\n/g, " ").split(/\r?\n/);
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

describe("lib/config.ts's list of variables, as this test reads it", () => {
  test("includes variables read both directly and through the parsing helpers", () => {
    const names = configVariables();
    for (const name of ["DATABASE_URL", "CSRF_SECRET", "IMAGE_ORIGINS", "NODE_ENV", "AMQP_URL", "RETRY_MAX_MS", "LOG_LEVEL"]) {
      assert.ok(names.has(name), `${name} not found in lib/config.ts`);
    }
  });
});

describe("docker-compose.yml", () => {
  test("defines the rabbitmq, web and worker services", () => {
    for (const name of ["rabbitmq", "web", "worker"]) service(name);
  });

  test("runs RabbitMQ with the management plugin, AMQP and the UI published, and its data in a named volume", () => {
    const rabbit = service("rabbitmq");
    assert.equal(rabbit.image, "rabbitmq:3-management");
    const ports = portsOf(rabbit);
    for (const port of [5672, 15672]) {
      const published = ports.find((p) => p.container === port);
      assert.ok(published, `port ${port} is not published`);
      assert.equal(published.host, port, `port ${port} is published on another host port`);
    }
    assert.deepEqual(namedVolumesOf(rabbit).map((v) => v.target), ["/var/lib/rabbitmq"]);
  });

  test("lets web and worker start only once RabbitMQ answers its health check", () => {
    assert.ok(service("rabbitmq").healthcheck?.test, "rabbitmq has no healthcheck");
    for (const name of ["web", "worker"]) {
      assert.equal(service(name).depends_on?.rabbitmq?.condition, "service_healthy", `${name} does not wait for a healthy rabbitmq`);
    }
  });

  test("builds web and worker from the project's Dockerfile and runs their entry files with node under an init", () => {
    for (const name of ["web", "worker"]) {
      const build = service(name).build;
      assert.ok(build, `${name} has no build`);
      const context = typeof build === "string" ? build : build.context ?? ".";
      const dockerfile = typeof build === "string" ? "Dockerfile" : build.dockerfile ?? "Dockerfile";
      assert.equal(path.resolve(projectRoot, context, dockerfile), path.join(projectRoot, "Dockerfile"), `${name} builds from another Dockerfile`);
      assert.equal(commandOf(service(name)), `node --import tsx ${name === "web" ? "web.ts" : "tasks/worker.ts"}`);
      assert.equal(service(name).init, true, "signals reach node, which drains before exiting");
    }
  });

  test("publishes the web port, which the image listens on", () => {
    assert.ok(portsOf(service("web")).some((p) => p.container === 3000 && p.host === 3000), "web does not publish 3000:3000");
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
      assert.notEqual(decodeURIComponent(url.username), "guest", `${name} connects as guest, which RabbitMQ refuses from other hosts`);
      assert.equal(decodeURIComponent(url.username), user);
      assert.equal(decodeURIComponent(url.password), rabbitEnv.RABBITMQ_DEFAULT_PASS);
    }
  });

  test("sets on web and worker only variables that lib/config.ts reads", () => {
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

  test("documents every variable lib/config.ts reads, and nothing else", () => {
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

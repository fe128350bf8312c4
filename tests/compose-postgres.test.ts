/* eslint-disable @typescript-eslint/no-explicit-any -- a parsed compose file has no type of its own */
// docker-compose.postgres.yml, the opt-in file that runs GenDog on PostgreSQL with two
// workers: checked as compose would merge it over docker-compose.yml (no Docker engine here).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { loadConfig, projectRoot } from "../lib/platform/config.ts";

const read = (file: string) =>
  parse(readFileSync(path.join(projectRoot, file), "utf8"), { merge: true }) as {
    services: Record<string, any>;
    volumes?: Record<string, unknown>;
  };
const base = read("docker-compose.yml");
const postgres = read("docker-compose.postgres.yml");

/** What compose runs for a service: the base file's, with the override's maps merged in. */
function merged(name: string) {
  const over = postgres.services[name] ?? {};
  const from = over.extends ? base.services[over.extends.service] : base.services[name];
  assert.ok(from, `no service '${name}' to merge`);
  return {
    ...from,
    ...over,
    environment: { ...from.environment, ...over.environment },
    depends_on: { ...from.depends_on, ...over.depends_on },
  };
}

describe("docker-compose.postgres.yml", () => {
  test("adds PostgreSQL with a health check and its data in a named volume", () => {
    const db = postgres.services.postgres;
    assert.match(db.image, /^postgres:\d+/);
    assert.deepEqual(db.healthcheck.test.slice(0, 2), ["CMD", "pg_isready"]);
    assert.ok(db.volumes.some((v: string) => v.startsWith("postgres-data:")));
    assert.ok(postgres.volumes && "postgres-data" in postgres.volumes);
  });

  test("points the web and both workers at it, starting them once it and RabbitMQ are healthy", () => {
    const db = postgres.services.postgres.environment;
    for (const name of ["web", "worker", "worker-2"]) {
      const svc = merged(name);
      const url = new URL(svc.environment.DATABASE_URL);
      assert.equal(url.protocol, "postgresql:");
      assert.equal(url.hostname, "postgres");
      assert.equal(
        `${url.username}:${url.password}${url.pathname}`,
        `${db.POSTGRES_USER}:${db.POSTGRES_PASSWORD}/${db.POSTGRES_DB}`,
      );
      assert.equal(svc.depends_on.postgres?.condition, "service_healthy", name);
      assert.equal(svc.depends_on.rabbitmq?.condition, "service_healthy", name);
      assert.equal(loadConfig(svc.environment).databaseUrl, svc.environment.DATABASE_URL);
    }
  });

  test("runs the second worker from the same image and command as the first", () => {
    const first = merged("worker");
    const second = merged("worker-2");
    assert.equal(second.image, first.image);
    assert.deepEqual(second.command, first.command);
  });
});

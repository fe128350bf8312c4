/* eslint-disable @typescript-eslint/no-explicit-any -- a parsed compose file has no type of its own */
// docker-compose.cluster.yml, the opt-in file that runs three RabbitMQ nodes in one cluster,
// PostgreSQL, a web and two workers: checked as compose would merge it over
// docker-compose.yml and docker-compose.postgres.yml (no Docker engine here).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { amqpNodeUrls, loadConfig, projectRoot } from "../lib/platform/config.ts";

type ComposeFile = { services: Record<string, any>; volumes?: Record<string, unknown> };
const read = (file: string) =>
  parse(readFileSync(path.join(projectRoot, file), "utf8"), { merge: true }) as ComposeFile;
const layers = ["docker-compose.yml", "docker-compose.postgres.yml", "docker-compose.cluster.yml"].map(read);
const cluster = layers[2]!;
const NODES = ["rabbitmq", "rabbitmq-2", "rabbitmq-3"];
const APPS = ["web", "worker", "worker-2"];
const CONF_TARGET = "/etc/rabbitmq/conf.d/20-cluster.conf";

/**
 * What compose runs for a service: each file's maps merged over the one before (extends followed), lists of volumes
 * added by target.
 */
function merged(name: string): any {
  let result: any;
  for (const layer of layers) {
    const over = layer.services[name];
    if (!over) continue;
    const from = result ?? (over.extends ? merged(over.extends.service) : {});
    const volumes = new Map<string, string>();
    for (const v of [...(from.volumes ?? []), ...(over.volumes ?? [])] as string[]) volumes.set(v.split(":")[1]!, v);
    result = {
      ...from,
      ...over,
      environment: { ...from.environment, ...over.environment },
      depends_on: { ...from.depends_on, ...over.depends_on },
      volumes: [...volumes.values()],
    };
  }
  assert.ok(result, `no service '${name}'`);
  return result;
}

function clusterConf(): Map<string, string> {
  const text = readFileSync(path.join(projectRoot, "docker/rabbitmq-cluster.conf"), "utf8");
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\s*([\w.]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) entries.set(match[1]!, match[2]!);
  }
  return entries;
}

describe("docker-compose.cluster.yml", () => {
  test("runs three RabbitMQ nodes of one image, each with a host name, its own data volume and the cluster's settings", () => {
    const nodes = NODES.map(merged);
    assert.equal(new Set(nodes.map((n) => n.image)).size, 1, "the nodes run different images");
    assert.deepEqual(
      nodes.map((n) => n.hostname),
      NODES,
    );
    const data = nodes.map((n) => n.volumes.find((v: string) => v.endsWith(":/var/lib/rabbitmq"))?.split(":")[0]);
    assert.equal(new Set(data).size, 3, `the nodes share a data volume: ${data.join(", ")}`);
    const declared = { ...layers[0]!.volumes, ...cluster.volumes };
    for (const volume of data) assert.ok(volume in declared, `volume ${volume} is not declared`);
    for (const node of nodes) {
      assert.ok(
        node.volumes.some(
          (v: string) => v.split(":")[0] === "./docker/rabbitmq-cluster.conf" && v.split(":")[1] === CONF_TARGET,
        ),
        `${node.hostname} does not load the cluster settings`,
      );
      assert.deepEqual(node.healthcheck.test.slice(0, 2), ["CMD", "rabbitmq-diagnostics"]);
    }
  });

  test("the nodes share one Erlang cookie, also given to the CLI tools their health check runs", () => {
    const cookies = NODES.map(merged).flatMap((n) => [
      n.environment.RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS,
      n.environment.RABBITMQ_CTL_ERL_ARGS,
    ]);
    for (const args of cookies) assert.match(args, /-setcookie \S+/);
    assert.equal(new Set(cookies.map((a) => /-setcookie (\S+)/.exec(a)![1])).size, 1, "the nodes' cookies differ");
  });

  test("the cluster settings name the three nodes by their host names, and give the cluster a name of its own", () => {
    const conf = clusterConf();
    assert.equal(conf.get("cluster_formation.peer_discovery_backend"), "classic_config");
    const listed = [...conf]
      .filter(([key]) => key.startsWith("cluster_formation.classic_config.nodes."))
      .map(([, node]) => node);
    assert.deepEqual(
      listed.sort(),
      NODES.map((n) => `rabbit@${n}`),
    );
    // Unnamed, each node reports its own node name (name@host): GenDog can compare only a real name.
    assert.match(conf.get("cluster_name") ?? "", /^[^@\s]+$/);
  });

  test("points the web and both workers at every node, with quorum queues, PostgreSQL and the nodes' credentials", () => {
    const rabbit = merged("rabbitmq").environment;
    for (const name of APPS) {
      const svc = merged(name);
      const config = loadConfig(svc.environment);
      const urls = amqpNodeUrls(config.amqpUrl).map((u) => new URL(u));
      assert.deepEqual(
        urls.map((u) => u.hostname),
        NODES,
        `${name}'s AMQP_URL does not list the three nodes`,
      );
      for (const url of urls)
        assert.equal(
          `${url.username}:${url.password}`,
          `${rabbit.RABBITMQ_DEFAULT_USER}:${rabbit.RABBITMQ_DEFAULT_PASS}`,
          name,
        );
      assert.equal(config.queueType, "quorum", name);
      assert.match(config.databaseUrl, /^postgresql:\/\/[^@]+@postgres:5432\//, name);
      for (const dependency of [...NODES, "postgres"])
        assert.equal(
          svc.depends_on[dependency]?.condition,
          "service_healthy",
          `${name} does not wait for ${dependency}`,
        );
    }
  });

  test("publishes no host port twice", () => {
    const published = Object.keys({ ...layers[0]!.services, ...layers[1]!.services, ...cluster.services })
      .flatMap((name) => (merged(name).ports ?? []) as string[])
      .map((p) => p.replace(/:\d+$/, ""));
    assert.equal(new Set(published).size, published.length, published.join(", "));
  });
});

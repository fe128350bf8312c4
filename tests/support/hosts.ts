// Test hosts made of Linux network namespaces: each host a namespace with one veth link to
// a bridge of the test's own, in a /24 nobody else uses on this machine. RabbitMQ and
// PostgreSQL listen on 127.0.0.1 only, so the test forwards the bridge address's ports to
// them. Everything made here is removed by cleanup(), even after a failure.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { promisify } from "node:util";
import { projectRoot } from "../../lib/platform/config.ts";

const run = promisify(execFile);
const ip = (...args: string[]) => run("ip", args);

export interface Hosts {
  /** The bridge's address: where the hosts reach the forwarders and the dog.ceo stand-in. */
  gateway: string;
  address(host: string): string;
  /** Runs `node --import tsx <entry>` inside a host. */
  spawn(host: string, entry: string, env: Record<string, string>): ChildProcess & { output(): string };
  linkDown(host: string): Promise<void>;
  linkUp(host: string): Promise<void>;
  /** Listens on the gateway address and forwards each connection to 127.0.0.1:port. */
  forward(port: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** Whether this machine lets the test make namespaces (root, or CAP_NET_ADMIN). */
export async function canMakeNamespaces(): Promise<string | undefined> {
  const probe = `gdprobe${randomBytes(3).toString("hex")}`;
  try {
    await ip("netns", "add", probe);
    await ip("netns", "del", probe);
    return undefined;
  } catch (err) {
    return `this machine cannot create network namespaces (${(err as Error).message.split("\n")[0]})`;
  }
}

export async function makeHosts(names: string[]): Promise<Hosts> {
  const tag = randomBytes(2).toString("hex");
  const subnet = `10.213.${(parseInt(tag, 16) % 200) + 20}`;
  const bridge = `gdbr${tag}`;
  const namespace = (host: string) => `gd${tag}${host}`;
  const veth = (host: string, side: "h" | "b") => `gd${tag}${names.indexOf(host)}${side}`;
  const children: ChildProcess[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();

  const hosts: Hosts = {
    gateway: `${subnet}.1`,
    address: (host) => `${subnet}.${names.indexOf(host) + 2}`,
    spawn(host, entry, env) {
      let output = "";
      const child = spawn("ip", ["netns", "exec", namespace(host), process.execPath, "--import", "tsx", entry], {
        cwd: projectRoot,
        env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      for (const stream of [child.stdout!, child.stderr!])
        stream.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      children.push(child);
      return Object.assign(child, { output: () => output });
    },
    linkDown: async (host) => void (await ip("link", "set", veth(host, "b"), "down")),
    linkUp: async (host) => void (await ip("link", "set", veth(host, "b"), "up")),
    async forward(port) {
      const server = net.createServer((client) => {
        const upstream = net.connect(port, "127.0.0.1");
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on("error", () => {});
          socket.on("close", () => sockets.delete(socket));
        }
        client.pipe(upstream).pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      await new Promise<void>((resolve, reject) =>
        server.once("error", reject).listen(port, hosts.gateway, () => resolve()),
      );
      servers.push(server);
    },
    async cleanup() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      for (const host of names) {
        await ip("link", "del", veth(host, "b")).catch(() => {}); // takes its peer in the namespace with it
        await ip("netns", "del", namespace(host)).catch(() => {});
      }
      await ip("link", "del", bridge).catch(() => {});
    },
  };

  try {
    await ip("link", "add", bridge, "type", "bridge");
    await ip("addr", "add", `${hosts.gateway}/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (const host of names) {
      const ns = namespace(host);
      await ip("netns", "add", ns);
      await ip("link", "add", veth(host, "h"), "type", "veth", "peer", "name", veth(host, "b"));
      await ip("link", "set", veth(host, "h"), "netns", ns);
      await ip("link", "set", veth(host, "b"), "master", bridge);
      await ip("link", "set", veth(host, "b"), "up");
      await ip("-n", ns, "addr", "add", `${hosts.address(host)}/24`, "dev", veth(host, "h"));
      await ip("-n", ns, "link", "set", veth(host, "h"), "up");
      await ip("-n", ns, "link", "set", "lo", "up");
    }
  } catch (err) {
    await hosts.cleanup();
    throw err;
  }
  return hosts;
}

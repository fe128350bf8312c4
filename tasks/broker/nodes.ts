// The RabbitMQ nodes AMQP_URL lists, and which one the connection is on. amqplib's recovery
// reconnects to one address it reads afresh on every attempt, so the address it is given
// is an object whose fields this list swaps for the next node's when a node fails or goes
// away: round the list, then round again after a growing pause.
import type { Options, ServerProperties } from "amqplib";
import { amqpNodeUrls, maskUrl } from "../../lib/platform/config.ts";

/** The pause before the first pass over the nodes, doubled each further pass up to the cap. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 10_000;

export class NodeList {
  private readonly urls: string[];
  private index = 0;
  /** What amqplib connects to: the current node's fields, changed in place by moveOn(). */
  readonly target: Options.Connect = {};
  /** The cluster_name of the first node that answered with a name of its own. */
  private cluster?: string;

  constructor(raw: string) {
    this.urls = amqpNodeUrls(raw);
    Object.assign(this.target, connectOptions(this.urls[0]));
  }

  get size(): number {
    return this.urls.length;
  }

  get several(): boolean {
    return this.urls.length > 1;
  }

  /** The current node, its password hidden. */
  get address(): string {
    return maskUrl(this.urls[this.index]);
  }

  /** The next connect goes to the next node in the list (after the last, the first). */
  moveOn(): void {
    this.index = (this.index + 1) % this.urls.length;
    for (const key of Object.keys(this.target)) delete this.target[key as keyof Options.Connect];
    Object.assign(this.target, connectOptions(this.urls[this.index]));
  }

  /**
   * amqplib's reconnect delay for the attempt-th try since the last success: short while a node of the list is still
   * untried in this pass.
   */
  delayBefore(attempt: number): number {
    const pass = Math.floor((attempt - 1) / this.urls.length);
    const base = Math.min(MAX_DELAY_MS / 1.2, FIRST_DELAY_MS * 2 ** pass);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /**
   * Throws if this node says it belongs to another cluster than the first that answered.
   * Only a name given to the cluster (rabbitmqctl set_cluster_name, or cluster_name in
   * rabbitmq.conf) tells: unnamed, each node reports its own node name (name@host).
   */
  checkCluster(server: ServerProperties): void {
    const name = server.cluster_name;
    if (!name || name.includes("@")) return;
    this.cluster ??= name;
    if (name !== this.cluster) throw new ClusterMismatchError(this.address, name, this.cluster);
  }
}

export class ClusterMismatchError extends Error {
  constructor(node: string, found: string, expected: string) {
    super(
      `RabbitMQ node ${node} belongs to cluster '${found}', not '${expected}' like the node GenDog reached first: AMQP_URL must list the nodes of one cluster. Not using it; trying the next node`,
    );
    this.name = "ClusterMismatchError";
  }
}

/** Why a node that answered was not used, in words for the log, or undefined if the error is a node being away. */
export const SetupRefusal = {
  explain(err: Error & { code?: number }, node: string): string | undefined {
    if (err instanceof ClusterMismatchError) return err.message;
    if (err.code === 406 && /inequivalent arg/.test(err.message)) {
      const detail = /PRECONDITION_FAILED - (.*?)"?$/.exec(err.message)?.[1] ?? err.message;
      return (
        `RabbitMQ at ${node} holds a queue of GenDog's name with other settings (${detail}). ` +
        "A queue cannot change type or arguments in place: delete it (rabbitmqctl delete_queue NAME) once it is drained, or set another QUEUE_NAME. Retrying..."
      );
    }
    return undefined;
  },
};

/** One URL as the fields amqplib's connect takes; the heartbeat defaults to 5 s. */
function connectOptions(raw: string): Options.Connect {
  const url = new URL(raw);
  const query = url.searchParams;
  const number = (name: string) => (query.has(name) ? Number(query.get(name)) : undefined);
  const options: Options.Connect = {
    protocol: url.protocol.slice(0, -1),
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : url.protocol === "amqps:" ? 5671 : 5672,
    // Omitted in the URL, amqplib logs in as guest/guest, as it does for a URL string.
    ...(url.username || url.password
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : {}),
    // amqplib unescapes the vhost itself; none means "/".
    vhost: url.pathname.slice(1) || undefined,
    // A short heartbeat notices a silently dead connection in seconds, not minutes.
    heartbeat: number("heartbeat") ?? 5,
  };
  for (const name of ["frameMax", "channelMax", "maxFrameSize"] as const)
    if (query.has(name)) options[name] = number(name);
  if (query.has("locale")) options.locale = query.get("locale")!;
  for (const key of Object.keys(options) as (keyof Options.Connect)[])
    if (options[key] === undefined) delete options[key];
  return options;
}

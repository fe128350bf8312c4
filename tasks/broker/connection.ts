// One RabbitMQ connection that heals itself, shared by the queue layer's parts (publishing,
// consuming, event subscriptions). Only the queue layer (tasks/queue.ts and the modules it
// builds on) touches amqplib.
//
// Connection loss is handled by amqplib's own opt-in recovery: it reconnects with backoff
// and calls `setup` after every (re)connect, where each part opens its channels again, in
// the order the parts were added. A channel the broker closes while the connection stays
// up (a deleted queue, a cancelled consumer) is recovered the same way, by closing the
// connection and letting recovery build everything again.
//
// AMQP_URL may list the nodes of a cluster (tasks/broker/nodes.ts): a node that does not answer,
// or goes away, is left for the next one in the list, and a node of another cluster is
// refused.
import amqplib, { type Channel, type ChannelModel, type RecoveringChannelModel } from "amqplib";
import type { Logger } from "../../lib/platform/logger.ts";
import { settleWithin } from "./closing.ts";
import { NodeList, SetupRefusal } from "./nodes.ts";

/** A live connection or the recovering one: both open channels on the current socket. */
export type ChannelFactory = Pick<ChannelModel, "createChannel" | "createConfirmChannel">;

/** A part of the queue layer with channels of its own on the shared connection. */
export interface ConnectionPart {
  /** Opens this part's channels on a fresh connection. */
  attach(model: ChannelFactory): Promise<void>;
  /** The connection is gone, and its channels with it. */
  detach(): void;
}

/** How long a node has to take the socket and open the connection before the next one is tried. */
const CONNECT_TIMEOUT_MS = 5000;

export class BrokerConnection {
  private connection?: RecoveringChannelModel;
  /** The live connection under the recovering one, to force a rebuild after a channel loss. */
  private live?: ChannelModel;
  /** The channels set up on the live connection; a close of one of these is unexpected. */
  private liveChannels = new Set<Channel>();
  private parts: ConnectionPart[] = [];
  private attached = false;
  private everConnected = false;
  private connectedListeners: (() => void)[] = [];
  private readonly nodes: NodeList;

  constructor(
    url: string,
    private readonly logger: Logger,
  ) {
    this.nodes = new NodeList(url);
  }

  /** The node this connection is on, or tries next, its password hidden. */
  get address(): string {
    return this.nodes.address;
  }

  /** Parts attach in the order added, so the first can declare what the others use. */
  add(part: ConnectionPart): void {
    this.parts.push(part);
  }

  /** The connection to open channels on, once every part has attached; until then a part waits for its attach. */
  get ready(): ChannelFactory | undefined {
    return this.attached ? this.connection : undefined;
  }

  onConnected(listener: () => void): void {
    this.connectedListeners.push(listener);
  }

  /** Starts connecting in the background and resolves at once; onConnected tells when it is up. */
  async start(): Promise<void> {
    const log = this.logger;
    const nodes = this.nodes;
    this.connection = await amqplib.connect(nodes.target, {
      // Without it Nagle holds pipelined publishes and confirms back ~40 ms each.
      noDelay: true,
      timeout: CONNECT_TIMEOUT_MS,
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        calculateDelay: (attempt) => nodes.delayBefore(attempt),
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    let failures = 0;
    let lastRefusal = "";
    this.connection.on("connect", () => {
      failures = 0;
      lastRefusal = "";
      log.info({ broker: this.address }, this.everConnected ? "reconnected to RabbitMQ" : "connected to RabbitMQ");
      this.everConnected = true;
      for (const listener of this.connectedListeners) listener();
    });
    this.connection.on("disconnect", (err: Error) => {
      this.attached = false;
      this.live = undefined;
      this.liveChannels.clear();
      for (const part of this.parts) part.detach();
      const lost = this.address;
      nodes.moveOn();
      log.warn(
        { broker: lost, next: nodes.several ? this.address : undefined, reason: err?.message },
        "lost the connection to RabbitMQ; reconnecting",
      );
    });
    this.connection.on("connect-failed", (err: Error) => {
      failures += 1;
      const tried = this.address;
      nodes.moveOn();
      const refusal = SetupRefusal.explain(err, tried);
      if (refusal) {
        // Not a node being away: it answered, and what it said will not change by retrying soon.
        if (refusal !== lastRefusal || failures % 20 === 0) log.error(refusal);
        lastRefusal = refusal;
        return;
      }
      // One clear line once every node was tried, then quiet retries: a missing broker is a set-up step, not a crash.
      if (failures < nodes.size) {
        log.warn(
          { broker: tried, next: this.address, reason: err.message },
          "a RabbitMQ node did not answer; trying the next",
        );
        return;
      }
      if (failures !== nodes.size && failures % 20 !== 0) return;
      const where = nodes.several ? `any of the ${nodes.size} nodes in AMQP_URL (last ${tried})` : tried;
      log.error(
        this.everConnected
          ? `RabbitMQ at ${where} is still unreachable (${err.message}). Retrying...`
          : `RabbitMQ is not reachable at ${where} (${err.message}); start one with \`docker compose up -d rabbitmq\`. Retrying...`,
      );
    });
    this.connection.on("error", (err: Error) => log.warn({ err }, "RabbitMQ connection error"));
  }

  private async setup(model: ChannelModel): Promise<void> {
    this.nodes.checkCluster(model.connection.serverProperties);
    this.live = model;
    this.liveChannels.clear();
    for (const part of this.parts) await part.attach(model);
    this.attached = true;
  }

  /** Watches a part's channel: if the broker closes it, the whole connection is rebuilt. */
  watch(channel: Channel, purpose: string, onClose?: () => void): void {
    this.liveChannels.add(channel);
    channel.on("error", (err: Error) => this.logger.warn({ err }, `${purpose} channel error`));
    channel.on("close", () => {
      onClose?.();
      this.rebuild(channel, `the ${purpose} channel closed`);
    });
  }

  /** A channel about to be closed on purpose: its close is not a reason to rebuild. */
  release(channel: Channel): void {
    this.liveChannels.delete(channel);
  }

  rebuild(channel: Channel, reason: string): void {
    // Closes after a connection loss, or on purpose (shutdown), are not news.
    if (!this.liveChannels.delete(channel) || !this.live || !this.connection) return;
    this.logger.warn({ reason }, "rebuilding the RabbitMQ connection");
    const model = this.live;
    this.live = undefined;
    this.liveChannels.clear();
    model.close().catch(() => {});
  }

  /** Closes the connection after `first` (a part's own orderly close) has run. */
  async close(first?: () => Promise<void>): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.attached = false;
    this.live = undefined;
    this.liveChannels.clear();
    await first?.();
    if (connection) await settleWithin(() => connection.close());
  }
}

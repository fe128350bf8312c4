// The queue layer: the only code in GenDog that touches amqplib.
//
// Topology, for a work queue Q:
//   Q                 durable work queue; rejected messages dead-letter to Q.dead
//   Q.retry.N         one per retry attempt; a message waits there for its backoff
//                     (per-message expiration) and then dead-letters back into Q,
//                     so a waiting retry never sits in a worker's memory
//   Q.dead            dead letters: poison messages and jobs that used all attempts
//   Q.events          topic exchange for task events and worker heartbeats
//
// Connection loss is handled by amqplib's own opt-in recovery: it reconnects with
// backoff and calls `setup` after every (re)connect, where channels, topology,
// consumers and subscriptions are declared again.
import os from "node:os";
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type RecoveringChannelModel } from "amqplib";
import { maskUrl } from "../lib/config.ts";
import type { Logger } from "../lib/logger.ts";

export class QueueUnavailableError extends Error {
  readonly status = 503;
  readonly code = "queue_unavailable";
  constructor(reason: string) {
    super(`the job queue is not reachable (${reason})`);
  }
}

export interface Delivery {
  content: Buffer;
  /** 1 for the first run; carried in the x-attempt header across retries. */
  attempt: number;
  redelivered: boolean;
}

export type Outcome =
  | { action: "ack" }
  | { action: "retry"; delayMs: number; attempt: number }
  | { action: "dead-letter" };

/** A live connection or the recovering one: both open channels on the current socket. */
type ChannelFactory = Pick<ChannelModel, "createChannel">;

export type JobHandler = (delivery: Delivery) => Promise<Outcome>;
export type EventListener = (routingKey: string, payload: unknown) => void;

export interface QueueStats {
  queue: string;
  ready: number;
  consumers: number;
  retrying: number;
  dead: number;
}

export interface BrokerOptions {
  url: string;
  queueName: string;
  /** How many retry queues to declare: one per retry (max attempts - 1). */
  retryTiers: number;
  logger: Logger;
  publishTimeoutMs?: number;
}

export class Broker {
  private connection?: RecoveringChannelModel;
  private publisher?: ConfirmChannel;
  private consumer?: { handler: JobHandler; prefetch: number; channel?: Channel; tag?: string; stopped: boolean };
  private subscriptions: { pattern: string; listener: EventListener }[] = [];
  private inFlight = 0;
  private everConnected = false;
  private connectedListeners: (() => void)[] = [];
  private readonly address: string;

  constructor(private readonly options: BrokerOptions) {
    this.address = maskUrl(options.url);
  }

  get queueName(): string {
    return this.options.queueName;
  }

  get eventsExchange(): string {
    return `${this.options.queueName}.events`;
  }

  get deadLetterQueue(): string {
    return `${this.options.queueName}.dead`;
  }

  retryQueue(attempt: number): string {
    return `${this.options.queueName}.retry.${Math.min(Math.max(attempt, 1), this.options.retryTiers)}`;
  }

  isConnected(): boolean {
    return this.publisher !== undefined;
  }

  /** Starts connecting in the background; resolves at once. Use waitUntilConnected to wait. */
  async start(): Promise<void> {
    const log = this.options.logger;
    this.connection = await amqplib.connect(withHeartbeat(this.options.url), {
      recovery: {
        waitForConnect: false,
        initialDelay: 250,
        maxDelay: 10_000,
        maxRetries: Infinity,
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    let failures = 0;
    this.connection.on("connect", () => {
      failures = 0;
      log.info({ broker: this.address }, this.everConnected ? "reconnected to RabbitMQ" : "connected to RabbitMQ");
      this.everConnected = true;
      for (const listener of this.connectedListeners) listener();
    });
    this.connection.on("disconnect", (err: Error) => {
      this.publisher = undefined;
      if (this.consumer) this.consumer.channel = undefined;
      log.warn({ broker: this.address, reason: err?.message }, "lost the connection to RabbitMQ; reconnecting");
    });
    this.connection.on("connect-failed", (err: Error) => {
      failures += 1;
      // One clear line, then quiet retries: a missing broker is a set-up step, not a crash.
      if (failures !== 1 && failures % 20 !== 0) return;
      log.error(
        this.everConnected
          ? `RabbitMQ at ${this.address} is still unreachable (${err.message}). Retrying...`
          : `RabbitMQ is not reachable at ${this.address} (${err.message}); start one with \`docker compose up -d rabbitmq\`. Retrying...`,
      );
    });
    this.connection.on("error", (err: Error) => log.warn({ err: err.message }, "RabbitMQ connection error"));
  }

  /** Resolves once connected, or false after timeoutMs. */
  async waitUntilConnected(timeoutMs: number): Promise<boolean> {
    if (this.isConnected()) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.connectedListeners = this.connectedListeners.filter((l) => l !== onConnect);
        resolve(ok);
      };
      const onConnect = () => done(true);
      this.connectedListeners.push(onConnect);
    });
  }

  onConnected(listener: () => void): void {
    this.connectedListeners.push(listener);
  }

  private async setup(model: ChannelModel): Promise<void> {
    const { queueName, retryTiers } = this.options;
    const publisher = await model.createConfirmChannel();
    publisher.on("error", (err: Error) => this.options.logger.warn({ err: err.message }, "publish channel error"));
    publisher.on("close", () => {
      if (this.publisher === publisher) this.publisher = undefined;
    });
    await publisher.assertQueue(this.deadLetterQueue, { durable: true });
    await publisher.assertQueue(queueName, {
      durable: true,
      arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": this.deadLetterQueue },
    });
    for (let tier = 1; tier <= retryTiers; tier++) {
      await publisher.assertQueue(this.retryQueue(tier), {
        durable: true,
        arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queueName },
      });
    }
    await publisher.assertExchange(this.eventsExchange, "topic", { durable: true });

    for (const { pattern, listener } of this.subscriptions) await this.subscribeOn(model, pattern, listener);
    if (this.consumer && !this.consumer.stopped) await this.consumeOn(model);
    this.publisher = publisher;
  }

  // ---- publishing ---------------------------------------------------------

  /** Publishes a persistent job and resolves only when the broker has confirmed it. */
  async publishJob(content: Buffer, opts: { messageId: string; attempt?: number }): Promise<void> {
    await this.confirmPublish("", this.options.queueName, content, opts.messageId, opts.attempt ?? 1);
  }

  /** Best effort: events are hints for live pages, which resync from the database. */
  publishEvent(routingKey: string, payload: unknown): void {
    const channel = this.publisher;
    if (!channel) return;
    try {
      channel.publish(this.eventsExchange, routingKey, Buffer.from(JSON.stringify(payload)), { contentType: "application/json" }, () => {});
    } catch (err) {
      this.options.logger.debug({ err: (err as Error).message }, "event not published");
    }
  }

  private async confirmPublish(exchange: string, routingKey: string, content: Buffer, messageId: string, attempt: number, expirationMs?: number): Promise<void> {
    const channel = this.publisher;
    if (!channel) throw new QueueUnavailableError(`not connected to ${this.address}`);
    const timeoutMs = this.options.publishTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new QueueUnavailableError(`no confirm within ${timeoutMs} ms`)), timeoutMs);
      try {
        channel.publish(
          exchange,
          routingKey,
          content,
          {
            persistent: true,
            contentType: "application/json",
            messageId,
            headers: { "x-attempt": attempt },
            ...(expirationMs !== undefined ? { expiration: String(Math.max(0, Math.round(expirationMs))) } : {}),
          },
          (err: unknown) => {
            clearTimeout(timer);
            if (err) reject(new QueueUnavailableError(`the broker refused the message: ${String((err as Error)?.message ?? err)}`));
            else resolve();
          },
        );
      } catch (err) {
        clearTimeout(timer);
        reject(new QueueUnavailableError((err as Error).message));
      }
    });
  }

  // ---- consuming ----------------------------------------------------------

  /** Consumes jobs now and again after every reconnect; the handler decides ack, retry or dead-letter. */
  async consumeJobs(handler: JobHandler, prefetch: number): Promise<void> {
    this.consumer = { handler, prefetch, stopped: false };
    // If already connected, consume now; otherwise setup() will on connect.
    if (this.connection && this.isConnected()) await this.consumeOn(this.connection);
  }

  private async consumeOn(model: ChannelFactory): Promise<void> {
    const consumer = this.consumer;
    if (!consumer || consumer.stopped) return;
    const channel = await model.createChannel();
    channel.on("error", (err: Error) => this.options.logger.warn({ err: err.message }, "consume channel error"));
    await channel.prefetch(consumer.prefetch);
    const { consumerTag } = await channel.consume(this.options.queueName, (msg) => {
      if (msg) void this.handle(channel, msg, consumer.handler);
    });
    consumer.channel = channel;
    consumer.tag = consumerTag;
  }

  private async handle(channel: Channel, msg: ConsumeMessage, handler: JobHandler): Promise<void> {
    this.inFlight += 1;
    const attempt = Number(msg.properties.headers?.["x-attempt"]) || 1;
    try {
      let outcome: Outcome;
      try {
        outcome = await handler({ content: msg.content, attempt, redelivered: msg.fields.redelivered });
      } catch (err) {
        // Handlers decide outcomes themselves; an escape here is a bug, not a reason to loop.
        this.options.logger.error({ err }, "job handler threw; dead-lettering the message");
        outcome = { action: "dead-letter" };
      }
      if (outcome.action === "retry") {
        const messageId = String(msg.properties.messageId ?? "");
        await this.confirmPublish("", this.retryQueue(attempt), msg.content, messageId, outcome.attempt, outcome.delayMs);
        channel.ack(msg);
      } else if (outcome.action === "dead-letter") {
        channel.nack(msg, false, false);
      } else {
        channel.ack(msg);
      }
    } catch (err) {
      // The channel is gone or the retry could not be published: the message stays
      // unacked and the broker redelivers it, which the handler is built to survive.
      this.options.logger.warn({ err: (err as Error).message }, "could not settle a message; the broker will redeliver it");
      try {
        channel.nack(msg, false, true);
      } catch {
        // channel already closed: redelivery is automatic
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  get jobsInFlight(): number {
    return this.inFlight;
  }

  /** Stops taking new jobs and waits (up to timeoutMs) for the ones in hand to settle. */
  async stopConsuming(timeoutMs: number): Promise<boolean> {
    const consumer = this.consumer;
    if (!consumer) return true;
    consumer.stopped = true;
    if (consumer.channel && consumer.tag) {
      try {
        await consumer.channel.cancel(consumer.tag);
      } catch {
        // the connection is gone; nothing more will be delivered anyway
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(25);
    return this.inFlight === 0;
  }

  // ---- events -------------------------------------------------------------

  async subscribeEvents(pattern: string, listener: EventListener): Promise<void> {
    this.subscriptions.push({ pattern, listener });
    if (this.connection && this.isConnected()) await this.subscribeOn(this.connection, pattern, listener);
  }

  private async subscribeOn(model: ChannelFactory, pattern: string, listener: EventListener): Promise<void> {
    const channel = await model.createChannel();
    channel.on("error", (err: Error) => this.options.logger.warn({ err: err.message }, "events channel error"));
    await channel.assertExchange(this.eventsExchange, "topic", { durable: true });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, this.eventsExchange, pattern);
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        try {
          listener(msg.fields.routingKey, JSON.parse(msg.content.toString()));
        } catch (err) {
          this.options.logger.warn({ err: (err as Error).message }, "ignored an unreadable event");
        }
      },
      { noAck: true },
    );
  }

  // ---- inspection ---------------------------------------------------------

  /** Asks the broker for the depth of the work, retry and dead-letter queues. */
  async stats(): Promise<QueueStats> {
    const model = this.connection;
    if (!model || !this.isConnected()) throw new QueueUnavailableError(`not connected to ${this.address}`);
    const channel = await model.createChannel();
    channel.on("error", () => {});
    try {
      const work = await channel.checkQueue(this.options.queueName);
      const dead = await channel.checkQueue(this.deadLetterQueue);
      let retrying = 0;
      for (let tier = 1; tier <= this.options.retryTiers; tier++) {
        retrying += (await channel.checkQueue(this.retryQueue(tier))).messageCount;
      }
      return { queue: this.options.queueName, ready: work.messageCount, consumers: work.consumerCount, retrying, dead: dead.messageCount };
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.publisher = undefined;
    await connection?.close().catch(() => {});
  }
}

export function workerIdentity(): { host: string; pid: number } {
  return { host: os.hostname(), pid: process.pid };
}

function withHeartbeat(url: string): string {
  // A short heartbeat notices a silently dead connection in seconds, not minutes.
  return /[?&]heartbeat=/.test(url) ? url : `${url}${url.includes("?") ? "&" : "?"}heartbeat=5`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

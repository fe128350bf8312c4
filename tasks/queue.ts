// The queue layer: the only code in GenDog that touches amqplib. It connects, publishes
// jobs (with publisher confirms) and events, consumes jobs, and hears events; the broker
// objects it uses are declared by tasks/topology.ts.
//
// Connection loss is handled by amqplib's own opt-in recovery: it reconnects with
// backoff and calls `setup` after every (re)connect, where channels, topology,
// consumers and subscriptions are declared again. A channel the broker closes while
// the connection stays up (a deleted queue, a cancelled consumer) is recovered the
// same way, by closing the connection and letting recovery build everything again.
import { randomBytes } from "node:crypto";
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type RecoveringChannelModel } from "amqplib";
import { maskUrl } from "../lib/config.ts";
import type { Logger } from "../lib/logger.ts";
import type { QueueStats } from "../lib/monitor.ts";
import { deadLetterQueueName, declareTopology, eventsExchangeName, retryBucket, retryQueueName, retryQueueNames } from "./topology.ts";

/** The broker did not take a message or answer a question; callers never show it to a person as such. */
export class QueueUnavailableError extends Error {
  constructor(reason: string) {
    super(`the job queue is not reachable (${reason})`);
    this.name = "QueueUnavailableError";
  }
}

export interface Delivery {
  content: Buffer;
  /** 1 for the first run; carried in the x-attempt header across retries. */
  attempt: number;
  redelivered: boolean;
}

export type Outcome = { action: "ack" } | { action: "retry"; delayMs: number; attempt: number } | { action: "dead-letter" };

/** A live connection or the recovering one: both open channels on the current socket. */
type ChannelFactory = Pick<ChannelModel, "createChannel">;

export type JobHandler = (delivery: Delivery) => Promise<Outcome>;

interface Subscription {
  pattern: string;
  listener: EventListener;
  channel?: Channel;
  closed: boolean;
}
export type EventListener = (routingKey: string, payload: unknown) => void;

export interface BrokerOptions {
  url: string;
  queueName: string;
  /** quorum: replicated work and dead-letter queues, poison messages capped by x-delivery-limit. */
  queueType?: "classic" | "quorum";
  /** The range of retry waits, to declare the retry queues they need. */
  retry: { baseMs: number; maxMs: number };
  logger: Logger;
  publishTimeoutMs?: number;
}

/** How long close() waits for the broker to answer the consume channel's close. */
const CLOSE_WAIT_MS = 2000;

export class Broker {
  private connection?: RecoveringChannelModel;
  /** The live connection under the recovering one, to force a rebuild after a channel loss. */
  private live?: ChannelModel;
  /** The channels set up on the live connection; a close of one of these is unexpected. */
  private liveChannels = new Set<Channel>();
  private publisher?: ConfirmChannel;
  private consumer?: { handler: JobHandler; prefetch: number; channel?: Channel; tag?: string; stopped: boolean };
  private subscriptions: Subscription[] = [];
  private inFlight = 0;
  /** Told each time the last job in hand settles (stopConsuming waits on it). */
  private idleListeners: (() => void)[] = [];
  private everConnected = false;
  private connectedListeners: (() => void)[] = [];
  private readonly address: string;
  /** Tags this process's events, so its own subscriptions skip them. */
  private readonly id = randomBytes(6).toString("hex");

  constructor(private readonly options: BrokerOptions) {
    this.address = maskUrl(options.url);
  }

  get eventsExchange(): string {
    return eventsExchangeName(this.options.queueName);
  }

  get deadLetterQueue(): string {
    return deadLetterQueueName(this.options.queueName);
  }

  /** The retry queue for a wait: the smallest bucket that holds it. */
  retryQueue(delayMs: number): string {
    return retryQueueName(this.options.queueName, retryBucket(delayMs));
  }

  /** True while the broker can take a publish (the connection and its publish channel are up). */
  isConnected(): boolean {
    return this.publisher !== undefined;
  }

  /** Starts connecting in the background and resolves at once; onConnected tells when it is up. */
  async start(): Promise<void> {
    const log = this.options.logger;
    this.connection = await amqplib.connect(withHeartbeat(this.options.url), {
      // Without it Nagle holds pipelined publishes and confirms back ~40 ms each.
      noDelay: true,
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
      this.live = undefined;
      this.liveChannels.clear();
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
    this.connection.on("error", (err: Error) => log.warn({ err }, "RabbitMQ connection error"));
  }

  onConnected(listener: () => void): void {
    this.connectedListeners.push(listener);
  }

  private async setup(model: ChannelModel): Promise<void> {
    this.live = model;
    this.liveChannels.clear();
    const publisher = await model.createConfirmChannel();
    this.watchChannel(publisher, "publish");
    await declareTopology(publisher, this.options);

    for (const subscription of this.subscriptions) await this.subscribeOn(model, subscription);
    if (this.consumer && !this.consumer.stopped) await this.consumeOn(model);
    this.publisher = publisher;
  }

  /**
   * A channel the broker closes while the connection lives on would otherwise be gone for
   * good; closing the connection hands the rebuild to amqplib's recovery.
   */
  private watchChannel(channel: Channel, purpose: string): void {
    this.liveChannels.add(channel);
    channel.on("error", (err: Error) => this.options.logger.warn({ err }, `${purpose} channel error`));
    channel.on("close", () => {
      if (this.publisher === channel) this.publisher = undefined;
      this.rebuild(channel, `the ${purpose} channel closed`);
    });
  }

  private rebuild(channel: Channel, reason: string): void {
    // Closes after a connection loss, or on purpose (shutdown), are not news.
    if (!this.liveChannels.delete(channel) || !this.live || !this.connection) return;
    this.options.logger.warn({ reason }, "rebuilding the RabbitMQ connection");
    const model = this.live;
    this.live = undefined;
    this.liveChannels.clear();
    model.close().catch(() => {});
  }

  // ---- publishing ---------------------------------------------------------

  /** Publishes a persistent job and resolves only when the broker has confirmed it. */
  async publishJob(content: Buffer, opts: { messageId: string; attempt?: number }): Promise<void> {
    await this.confirmPublish("", this.options.queueName, content, opts.messageId, opts.attempt ?? 1);
  }

  /** Best effort: events are hints for live pages, which resync from the database. This process's own subscriptions never see them. */
  publishEvent(routingKey: string, payload: unknown): void {
    const channel = this.publisher;
    if (!channel) return;
    try {
      channel.publish(this.eventsExchange, routingKey, Buffer.from(JSON.stringify(payload)), { contentType: "application/json", appId: this.id }, () => {});
    } catch (err) {
      this.options.logger.debug({ err }, "event not published");
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
    this.watchChannel(channel, "consume");
    await channel.prefetch(consumer.prefetch);
    const { consumerTag } = await channel.consume(this.options.queueName, (msg) => {
      // null: the broker cancelled the consumer (the queue was deleted); build it again.
      if (msg) void this.handle(channel, msg, consumer.handler);
      else if (!consumer.stopped) this.rebuild(channel, "the broker cancelled the consume channel's consumer");
    });
    consumer.channel = channel;
    consumer.tag = consumerTag;
  }

  private async handle(channel: Channel, msg: ConsumeMessage, handler: JobHandler): Promise<void> {
    this.inFlight += 1;
    const attempt = Number(msg.properties.headers?.["x-attempt"]) || 1;
    const taskId = String(msg.properties.messageId ?? "");
    try {
      let outcome: Outcome;
      try {
        outcome = await handler({ content: msg.content, attempt, redelivered: msg.fields.redelivered });
      } catch (err) {
        // Handlers decide outcomes themselves; an escape here is a bug, not a reason to loop.
        this.options.logger.error({ err, taskId }, "job handler threw; dead-lettering the message");
        outcome = { action: "dead-letter" };
      }
      if (outcome.action === "retry") {
        await this.confirmPublish("", this.retryQueue(outcome.delayMs), msg.content, taskId, outcome.attempt, outcome.delayMs);
        channel.ack(msg);
      } else if (outcome.action === "dead-letter") {
        channel.nack(msg, false, false);
      } else {
        channel.ack(msg);
      }
    } catch (err) {
      // The channel is gone or the retry could not be published: the message stays
      // unacked and the broker redelivers it, which the handler is built to survive.
      this.options.logger.warn({ err, taskId }, "could not settle a message; the broker will redeliver it");
      try {
        channel.nack(msg, false, true);
      } catch {
        // channel already closed: redelivery is automatic
      }
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const idle of this.idleListeners.splice(0)) idle();
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
    if (consumer.channel) this.liveChannels.delete(consumer.channel);
    if (consumer.channel && consumer.tag) {
      try {
        await consumer.channel.cancel(consumer.tag);
      } catch {
        // the connection is gone; nothing more will be delivered anyway
      }
    }
    if (this.inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleListeners.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  // ---- events -------------------------------------------------------------

  /** Hears events whose routing key matches pattern, now and after every reconnect, until closed. */
  async subscribeEvents(pattern: string, listener: EventListener): Promise<{ close(): Promise<void> }> {
    const subscription: Subscription = { pattern, listener, closed: false };
    this.subscriptions.push(subscription);
    if (this.connection && this.isConnected()) await this.subscribeOn(this.connection, subscription);
    return {
      close: async () => {
        subscription.closed = true;
        this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
        const channel = subscription.channel;
        subscription.channel = undefined;
        if (channel) {
          this.liveChannels.delete(channel); // a close on purpose, not a reason to rebuild
          await channel.close().catch(() => {}); // its exclusive queue goes with it
        }
      },
    };
  }

  private async subscribeOn(model: ChannelFactory, subscription: Subscription): Promise<void> {
    const { pattern, listener } = subscription;
    const channel = await model.createChannel();
    this.watchChannel(channel, "events");
    await channel.assertExchange(this.eventsExchange, "topic", { durable: true });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, this.eventsExchange, pattern);
    await channel.consume(
      queue,
      (msg) => {
        // RabbitMQ has no no-local: our own events come back, and are dropped unread.
        if (!msg || msg.properties.appId === this.id) return;
        try {
          listener(msg.fields.routingKey, JSON.parse(msg.content.toString()));
        } catch (err) {
          this.options.logger.warn({ err }, "ignored an unreadable event");
        }
      },
      { noAck: true },
    );
    subscription.channel = channel;
    if (subscription.closed) {
      // Closed while it was being set up.
      this.liveChannels.delete(channel);
      await channel.close().catch(() => {});
    }
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
      for (const name of retryQueueNames(this.options.queueName, this.options.retry.baseMs, this.options.retry.maxMs)) {
        retrying += (await channel.checkQueue(name)).messageCount;
      }
      return { queue: this.options.queueName, ready: work.messageCount, consumers: work.consumerCount, retrying, dead: dead.messageCount };
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    const consuming = this.consumer?.channel;
    this.connection = undefined;
    this.live = undefined;
    this.liveChannels.clear();
    this.publisher = undefined;
    // The consume channel first: its close goes out behind the acks still queued on it and
    // waits for the broker's answer, so no ack is cut off by the connection's close. Not for
    // long: a broker that stopped answering must not hold the shutdown.
    if (consuming) await Promise.race([consuming.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    await connection?.close().catch(() => {});
  }
}

function withHeartbeat(url: string): string {
  // A short heartbeat notices a silently dead connection in seconds, not minutes.
  return /[?&]heartbeat=/.test(url) ? url : `${url}${url.includes("?") ? "&" : "?"}heartbeat=5`;
}

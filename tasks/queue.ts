// The queue layer's face: the Broker the rest of GenDog uses to publish jobs and events,
// consume jobs and hear events. It puts together the parts that share one self-healing
// connection (tasks/broker/connection.ts): publishing (tasks/broker/publishing.ts, which also declares
// tasks/broker/topology.ts's objects), event subscriptions and the job consumer. Only these
// modules touch amqplib.
import type { Logger } from "../lib/platform/logger.ts";
import type { QueueStats } from "../lib/monitor/overview.ts";
import { BrokerConnection } from "./broker/connection.ts";
import { settleWithin } from "./broker/closing.ts";
import { JobConsumer, type JobHandler } from "./broker/consuming.ts";
import { QueueReaders, type Decide, type QueuedMessage } from "./broker/inspection.ts";
import { Publisher, QueueUnavailableError } from "./broker/publishing.ts";
import { EventSubscriptions, type EventListener } from "./broker/subscriptions.ts";
import { sharedSlots } from "./broker/lanes.ts";
import {
  bulkQueueName,
  deadLetterQueueName,
  eventsExchangeName,
  retryBucket,
  retryQueueName,
  retryQueueNames,
} from "./broker/topology.ts";

export { QueueUnavailableError };
export type { Delivery, JobHandler, Outcome } from "./broker/consuming.ts";
export type { EventListener } from "./broker/subscriptions.ts";
export type { Decide, QueuedMessage } from "./broker/inspection.ts";

export interface BrokerOptions {
  /** One node's URL, or a cluster's nodes comma-separated (AMQP_URL). */
  url: string;
  queueName: string;
  /** quorum: replicated work, retry and dead-letter queues, poison messages capped by x-delivery-limit. */
  queueType?: "classic" | "quorum";
  /** The range of retry waits, to declare the retry queues they need. */
  retry: { baseMs: number; maxMs: number };
  logger: Logger;
  publishTimeoutMs?: number;
}

export class Broker {
  private readonly connection: BrokerConnection;
  private readonly publisher: Publisher;
  private readonly subscriptions: EventSubscriptions;
  /** People's lane and the reruns' (tasks/broker/lanes.ts). */
  private consumers: JobConsumer[] = [];
  private slots?: ReturnType<typeof sharedSlots>;
  /** Reads of the dead-letter and work queues take turns (tasks/broker/inspection.ts). */
  private readonly readers = new QueueReaders();

  constructor(private readonly options: BrokerOptions) {
    this.connection = new BrokerConnection(options.url, options.logger);
    this.publisher = new Publisher(this.connection, options, options.logger, options.publishTimeoutMs ?? 5000);
    this.subscriptions = new EventSubscriptions(
      this.connection,
      this.eventsExchange,
      this.publisher.appId,
      options.logger,
    );
    // In this order on every connect: the publisher declares what the others use.
    this.connection.add(this.publisher);
    this.connection.add(this.subscriptions);
  }

  get eventsExchange(): string {
    return eventsExchangeName(this.options.queueName);
  }

  get deadLetterQueue(): string {
    return deadLetterQueueName(this.options.queueName);
  }

  /** The reruns' work queue. */
  get bulkQueue(): string {
    return bulkQueueName(this.options.queueName);
  }

  /** The retry queue for a wait: the smallest bucket that holds it (of the reruns' lane for a rerun). */
  retryQueue(delayMs: number, bulk = false): string {
    return retryQueueName(bulk ? this.bulkQueue : this.options.queueName, retryBucket(delayMs), this.options.queueType);
  }

  /** True while the broker can take a publish (every part is set up and the publish channel is open). */
  isConnected(): boolean {
    return this.connection.ready !== undefined && this.publisher.hasChannel;
  }

  /** Starts connecting in the background and resolves at once; onConnected tells when it is up. */
  start(): Promise<void> {
    return this.connection.start();
  }

  onConnected(listener: () => void): void {
    this.connection.onConnected(listener);
  }

  /**
   * Publishes a persistent job and resolves only when the broker has confirmed it; a rerun (bulk) goes to the reruns'
   * lane.
   */
  async publishJob(content: Buffer, opts: { messageId: string; attempt?: number; bulk?: boolean }): Promise<void> {
    await this.publisher.confirmed({
      queue: opts.bulk ? this.bulkQueue : this.options.queueName,
      content,
      messageId: opts.messageId,
      attempt: opts.attempt ?? 1,
    });
  }

  /**
   * Best effort: events are hints for live pages, which resync from the database. This process's own subscriptions
   * never see them.
   */
  publishEvent(routingKey: string, payload: unknown): void {
    this.publisher.event(routingKey, payload);
  }

  /** False for a while after a task event found no listener: skip making them (tasks/broker/publishing.ts). */
  get taskEventsHeard(): boolean {
    return this.publisher.taskEventsHeard;
  }

  /** A web started hearing task events (its "control.listening"): make them again at once. */
  taskEventsWanted(): void {
    this.publisher.taskEventsWanted();
  }

  /**
   * Consumes jobs now and again after every reconnect, from people's work queue and the
   * reruns', `concurrency` at a time in all, people's first, reruns at most half (tasks/broker/lanes.ts); the handler
   * decides ack, retry or dead-letter. A retry goes back through its own lane's retry queues.
   */
  async consumeJobs(handler: JobHandler, concurrency: number): Promise<void> {
    const bulkShare = (n: number) => Math.max(1, Math.ceil(n / 2));
    const { queueName, logger } = this.options;
    const slots = sharedSlots(concurrency);
    this.slots = slots;
    this.consumers = [
      new JobConsumer(
        this.connection,
        this.publisher,
        queueName,
        (delayMs) => this.retryQueue(delayMs),
        slots.wrap("people", handler),
        concurrency,
        logger,
      ),
      // Reruns hold at most half the slots: the rest are always free for people's jobs.
      new JobConsumer(
        this.connection,
        this.publisher,
        this.bulkQueue,
        (delayMs) => this.retryQueue(delayMs, true),
        slots.wrap("bulk", handler),
        bulkShare(concurrency),
        logger,
      ),
    ];
    for (const consumer of this.consumers) this.connection.add(consumer);
    // If already connected, consume now; otherwise the next connect will.
    const model = this.connection.ready;
    if (model) for (const consumer of this.consumers) await consumer.attach(model);
  }

  /**
   * Jobs running now, at most the concurrency (a rerun delivered and waiting for a slot is not counted: heartbeats
   * carry this).
   */
  get jobsInFlight(): number {
    return this.slots?.running ?? 0;
  }

  /** Stops taking new jobs (those in hand finish) until resumeConsuming(); kept across reconnects. */
  async pauseConsuming(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.pause()));
  }

  async resumeConsuming(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.resume()));
  }

  get consumingPaused(): boolean {
    return this.consumers.length > 0 && this.consumers.every((consumer) => consumer.isPaused);
  }

  /** Stops taking new jobs and waits (up to timeoutMs) for the ones in hand to settle. */
  async stopConsuming(timeoutMs: number): Promise<boolean> {
    return (await Promise.all(this.consumers.map((consumer) => consumer.stop(timeoutMs)))).every(Boolean);
  }

  /**
   * Hears events whose routing key matches pattern, now and after every reconnect, until closed; larger ones than
   * maxBytes are dropped unread.
   */
  subscribeEvents(pattern: string, listener: EventListener, maxBytes?: number): Promise<{ close(): Promise<void> }> {
    return this.subscriptions.subscribe(pattern, listener, maxBytes);
  }

  /**
   * Reads up to `limit` messages from the head of the dead-letter queue ("dead") or the work
   * queue ("work"), removes those `decide` picks, and leaves the rest where they were.
   */
  async readMessages(
    which: "dead" | "work",
    limit: number,
    decide?: Decide,
  ): Promise<{ total: number; messages: QueuedMessage[]; removed: number }> {
    return this.readers.read(
      () => this.liveConnection(),
      which === "dead" ? this.deadLetterQueue : this.options.queueName,
      limit,
      decide,
    );
  }

  /** Asks the broker for the depth of the work, retry and dead-letter queues. */
  async stats(): Promise<QueueStats> {
    const channel = await this.liveConnection().createChannel();
    channel.on("error", () => {});
    try {
      const { queueName, retry, queueType } = this.options;
      const work = await channel.checkQueue(queueName);
      const bulk = await channel.checkQueue(this.bulkQueue);
      const dead = await channel.checkQueue(this.deadLetterQueue);
      let retrying = 0;
      for (const lane of [queueName, this.bulkQueue])
        for (const name of retryQueueNames(lane, retry.baseMs, retry.maxMs, queueType))
          retrying += (await channel.checkQueue(name)).messageCount;
      return {
        queue: queueName,
        ready: work.messageCount,
        reruns: bulk.messageCount,
        consumers: work.consumerCount,
        retrying,
        dead: dead.messageCount,
      };
    } finally {
      await settleWithin(() => channel.close());
    }
  }

  /** The connection to open a short-lived channel on, or why there is none. */
  private liveConnection() {
    const model = this.connection.ready;
    if (!model || !this.isConnected()) throw new QueueUnavailableError(`not connected to ${this.connection.address}`);
    return model;
  }

  /** Closes the consume channel first (so no ack is cut off), then the connection. */
  async close(): Promise<void> {
    this.publisher.detach();
    await this.connection.close(async () => {
      await Promise.all(this.consumers.map((consumer) => consumer.close()));
    });
  }
}

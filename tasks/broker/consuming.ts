// Consuming jobs: one channel with a prefetch, each message settled by what its handler
// decides (ack, retry through a retry queue, or dead-letter), and a stop that waits for
// the jobs in hand.
import type { Channel, ConsumeMessage } from "amqplib";
import type { Logger } from "../../lib/platform/logger.ts";
import type { BrokerConnection, ChannelFactory, ConnectionPart } from "./connection.ts";
import { settleWithin } from "./closing.ts";
import type { Publisher } from "./publishing.ts";

export interface Delivery {
  content: Buffer;
  /** 1 for the first run; carried in the x-attempt header across retries. */
  attempt: number;
  redelivered: boolean;
}

export type Outcome =
  { action: "ack" } | { action: "retry"; delayMs: number; attempt: number } | { action: "dead-letter" };

export type JobHandler = (delivery: Delivery) => Promise<Outcome>;

export class JobConsumer implements ConnectionPart {
  private channel?: Channel;
  private tag?: string;
  private stopped = false;
  /** Paused: the channel stays (jobs in hand still ack on it) but takes no new ones. */
  private paused = false;
  private inFlight = 0;
  /** Told each time the last job in hand settles (stop() waits on it). */
  private idleListeners: (() => void)[] = [];

  constructor(
    private readonly connection: BrokerConnection,
    private readonly publisher: Publisher,
    private readonly queueName: string,
    private readonly retryQueue: (delayMs: number) => string,
    private readonly handler: JobHandler,
    private readonly prefetch: number,
    private readonly logger: Logger,
  ) {}

  get jobsInFlight(): number {
    return this.inFlight;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  async attach(model: ChannelFactory): Promise<void> {
    if (this.stopped) return;
    const channel = await model.createChannel();
    this.connection.watch(channel, "consume");
    await channel.prefetch(this.prefetch);
    this.channel = channel;
    this.tag = undefined;
    if (!this.paused) await this.consumeOn(channel);
  }

  /** Takes no new jobs until resume(); the ones in hand finish and settle as usual. A pause outlives a reconnect. */
  async pause(): Promise<void> {
    this.paused = true;
    const { channel, tag } = this;
    this.tag = undefined;
    if (channel && tag) await settleWithin(() => channel.cancel(tag)); // a closed channel consumes nothing anyway
  }

  async resume(): Promise<void> {
    if (!this.paused || this.stopped) return;
    this.paused = false;
    if (this.channel && !this.tag) await this.consumeOn(this.channel);
  }

  private async consumeOn(channel: Channel): Promise<void> {
    const { consumerTag } = await channel.consume(this.queueName, (msg) => {
      // null: the broker cancelled the consumer (the queue was deleted); build it again.
      if (msg) void this.handle(channel, msg);
      else if (!this.stopped) this.connection.rebuild(channel, "the broker cancelled the consume channel's consumer");
    });
    this.tag = consumerTag;
  }

  detach(): void {
    this.channel = undefined;
  }

  private async handle(channel: Channel, msg: ConsumeMessage): Promise<void> {
    this.inFlight += 1;
    const attempt = Number(msg.properties.headers?.["x-attempt"]) || 1;
    const taskId = String(msg.properties.messageId ?? "");
    try {
      let outcome: Outcome;
      try {
        outcome = await this.handler({ content: msg.content, attempt, redelivered: msg.fields.redelivered });
      } catch (err) {
        // Handlers decide outcomes themselves; an escape here is a bug, not a reason to loop.
        this.logger.error({ err, taskId }, "job handler threw; dead-lettering the message");
        outcome = { action: "dead-letter" };
      }
      if (outcome.action === "retry") {
        const retry = {
          queue: this.retryQueue(outcome.delayMs),
          content: msg.content,
          messageId: taskId,
          attempt: outcome.attempt,
          expirationMs: outcome.delayMs,
        };
        await this.publisher.confirmed(retry);
        channel.ack(msg);
      } else if (outcome.action === "dead-letter") {
        channel.nack(msg, false, false);
      } else {
        channel.ack(msg);
      }
    } catch (err) {
      // The channel is gone or the retry could not be published: the message stays
      // unacked and the broker redelivers it, which the handler is built to survive.
      this.logger.warn({ err, taskId }, "could not settle a message; the broker will redeliver it");
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

  /** Stops taking new jobs and waits (up to timeoutMs) for the ones in hand to settle. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    const channel = this.channel;
    if (channel) this.connection.release(channel);
    const tag = this.tag;
    // If the connection is gone, nothing more will be delivered anyway.
    if (channel && tag) await settleWithin(() => channel.cancel(tag));
    if (this.inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleListeners.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Closes the channel before its connection: the close goes out behind the acks still
   * queued on it and waits for the broker's answer, so no ack is cut off. Not for long: a
   * broker that stopped answering must not hold the shutdown.
   */
  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (!channel) return;
    this.connection.release(channel);
    await settleWithin(() => channel.close());
  }
}

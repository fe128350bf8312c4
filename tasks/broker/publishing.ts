// Publishing: jobs wait for the broker's confirm, events are fire-and-forget. The confirm
// channel is opened first on every connect, and declares the topology the other parts use.
import { randomBytes } from "node:crypto";
import type { ConfirmChannel } from "amqplib";
import { UNHEARD_QUIET_MS } from "../../lib/live/events.ts";
import type { Logger } from "../../lib/platform/logger.ts";
import type { BrokerConnection, ChannelFactory, ConnectionPart } from "./connection.ts";
import { declareTopology, eventsExchangeName, type Topology } from "./topology.ts";
import { QueueUnavailableError } from "../../lib/platform/errors.ts";

export { QueueUnavailableError };

export interface PersistentMessage {
  queue: string;
  content: Buffer;
  messageId: string;
  attempt: number;
  /** A wait in a retry queue: the message dead-letters onward when it expires. */
  expirationMs?: number;
}

export class Publisher implements ConnectionPart {
  private channel?: ConfirmChannel;
  /** Tags this process's events, so its own subscriptions skip them. */
  readonly appId = randomBytes(6).toString("hex");
  private unheardUntil = 0;
  /** The connection the channel is on, to open a fresh one after a nack. */
  private model?: ChannelFactory;
  private renewing?: Promise<void>;

  constructor(
    private readonly connection: BrokerConnection,
    private readonly topology: Topology,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  get hasChannel(): boolean {
    return this.channel !== undefined;
  }

  async attach(model: ChannelFactory): Promise<void> {
    this.model = model;
    const channel = await this.open(model);
    await declareTopology(channel, this.topology);
    this.channel = channel;
  }

  private async open(model: ChannelFactory): Promise<ConfirmChannel> {
    const channel = await model.createConfirmChannel();
    this.connection.watch(channel, "publish", () => {
      if (this.channel === channel) this.channel = undefined;
    });
    const events = eventsExchangeName(this.topology.queueName);
    channel.on("return", (message: { fields: { exchange: string } }) => {
      if (message.fields.exchange === events) this.unheardUntil = Date.now() + UNHEARD_QUIET_MS;
    });
    return channel;
  }

  /**
   * After a nack, publishes go on a fresh channel. A channel that first sent to a quorum
   * queue while its leader's node had just died (the connection came back on another node
   * before the queue elected a new leader) was seen nacking every later publish to that
   * queue (RabbitMQ 3.10, for over a minute, until the test gave up), while channels opened
   * after the election reached the new leader. The connection and its consumers stay.
   */
  private renew(stale: ConfirmChannel): void {
    const model = this.model;
    if (this.channel !== stale || !model || this.renewing) return;
    this.channel = undefined;
    this.connection.release(stale);
    stale.close().catch(() => {});
    this.logger.warn("the broker nacked a publish; publishing on a fresh channel");
    this.renewing = this.open(model)
      .then((fresh) => {
        if (this.model === model) this.channel = fresh;
        else this.connection.release(fresh);
      })
      .catch((err: unknown) =>
        this.logger.warn({ err }, "could not open a fresh publish channel; the next reconnect will"),
      )
      .finally(() => (this.renewing = undefined));
  }

  /**
   * Whether task events are worth making: false for a while after the broker returned one
   * because no queue was bound for it (no web had a page open). Each one costs this process
   * and the broker about as much as the job's own message.
   */
  get taskEventsHeard(): boolean {
    return Date.now() >= this.unheardUntil;
  }

  /** A web said it started hearing task events: make them again now, not after the quiet. */
  taskEventsWanted(): void {
    this.unheardUntil = 0;
  }

  detach(): void {
    this.channel = undefined;
    this.model = undefined;
  }

  /** Resolves only when the broker has confirmed the persistent message. */
  async confirmed(message: PersistentMessage): Promise<void> {
    const channel = this.channel;
    if (!channel) throw new QueueUnavailableError(`not connected to ${this.connection.address}`);
    const { queue, content, messageId, attempt, expirationMs } = message;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new QueueUnavailableError(`no confirm within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      const settle = (err: unknown) => {
        clearTimeout(timer);
        if (err) {
          // Only a nack on an open channel: a channel the broker closed (a publish to a deleted
          // exchange) is rebuilt with the connection, as its watch says.
          if ((err as Error)?.message === "message nacked") this.renew(channel);
          reject(
            new QueueUnavailableError(`the broker refused the message: ${String((err as Error)?.message ?? err)}`),
          );
        } else resolve();
      };
      const expiration =
        expirationMs !== undefined ? { expiration: String(Math.max(0, Math.round(expirationMs))) } : {};
      try {
        channel.publish(
          "",
          queue,
          content,
          {
            persistent: true,
            contentType: "application/json",
            messageId,
            headers: { "x-attempt": attempt },
            ...expiration,
          },
          settle,
        );
      } catch (err) {
        clearTimeout(timer);
        reject(new QueueUnavailableError((err as Error).message));
      }
    });
  }

  /**
   * Best effort: events are hints for live pages, which resync from the database. Task events are published mandatory
   * (see taskEventsHeard).
   */
  event(routingKey: string, payload: unknown): void {
    const channel = this.channel;
    if (!channel) return;
    try {
      const content = Buffer.from(JSON.stringify(payload));
      const mandatory = routingKey.startsWith("task.");
      channel.publish(
        eventsExchangeName(this.topology.queueName),
        routingKey,
        content,
        { contentType: "application/json", appId: this.appId, mandatory },
        () => {},
      );
    } catch (err) {
      this.logger.debug({ err }, "event not published");
    }
  }
}

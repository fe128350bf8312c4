// Hearing events: each subscription is an exclusive, auto-deleted queue bound to the events
// exchange by a routing-key pattern, set up again after every reconnect until it is closed.
// Whoever can publish on the exchange can send anything: an event over its subscription's
// size limit is dropped before it is read, and so is one that is not JSON.
import type { Channel } from "amqplib";
import { dropLog } from "../../lib/platform/dropLog.ts";
import type { Logger } from "../../lib/platform/logger.ts";
import { settleWithin } from "./closing.ts";
import type { BrokerConnection, ChannelFactory, ConnectionPart } from "./connection.ts";

export type EventListener = (routingKey: string, payload: unknown) => void;

/**
 * The largest event read, unless a subscription says less. The largest a real task makes is
 * 119,490 bytes (50 photos, each with a 2,048-character link, and a 500-character error); forged
 * ones of 4 MB, kept for replay, ran the web out of memory.
 */
export const MAX_EVENT_BYTES = 128 * 1024;

interface Subscription {
  pattern: string;
  listener: EventListener;
  maxBytes: number;
  channel?: Channel;
  closed: boolean;
}

export class EventSubscriptions implements ConnectionPart {
  private subscriptions: Subscription[] = [];
  private readonly tooLarge: ReturnType<typeof dropLog>;
  private readonly unreadable: ReturnType<typeof dropLog>;

  constructor(
    private readonly connection: BrokerConnection,
    private readonly exchange: string,
    /** This process's own events come back (RabbitMQ has no no-local) and are dropped unread. */
    private readonly ownAppId: string,
    private readonly logger: Logger,
  ) {
    this.tooLarge = dropLog(logger, "dropped an event over the size limit");
    this.unreadable = dropLog(logger, "dropped an event that is not JSON");
  }

  async attach(model: ChannelFactory): Promise<void> {
    for (const subscription of this.subscriptions) await this.subscribeOn(model, subscription);
  }

  detach(): void {
    for (const subscription of this.subscriptions) subscription.channel = undefined;
  }

  /** Hears events whose routing key matches pattern, now and after every reconnect, until closed. */
  async subscribe(
    pattern: string,
    listener: EventListener,
    maxBytes = MAX_EVENT_BYTES,
  ): Promise<{ close(): Promise<void> }> {
    const subscription: Subscription = { pattern, listener, maxBytes, closed: false };
    this.subscriptions.push(subscription);
    const model = this.connection.ready;
    if (model) await this.subscribeOn(model, subscription);
    return { close: () => this.unsubscribe(subscription) };
  }

  private async unsubscribe(subscription: Subscription): Promise<void> {
    subscription.closed = true;
    this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
    const channel = subscription.channel;
    subscription.channel = undefined;
    if (channel) {
      this.connection.release(channel);
      await settleWithin(() => channel.close()); // its exclusive queue goes with it
    }
  }

  private async subscribeOn(model: ChannelFactory, subscription: Subscription): Promise<void> {
    const channel = await model.createChannel();
    this.connection.watch(channel, "events");
    await channel.assertExchange(this.exchange, "topic", { durable: true });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, this.exchange, subscription.pattern);
    await channel.consume(
      queue,
      (msg) => {
        if (!msg || msg.properties.appId === this.ownAppId) return;
        const { routingKey } = msg.fields;
        const bytes = msg.content.length;
        if (bytes > subscription.maxBytes) return this.tooLarge({ routingKey, bytes, limit: subscription.maxBytes });
        let payload: unknown;
        try {
          payload = JSON.parse(msg.content.toString());
        } catch {
          return this.unreadable({ routingKey, bytes });
        }
        try {
          subscription.listener(routingKey, payload);
        } catch (err) {
          this.logger.error({ err, routingKey }, "an event listener failed");
        }
      },
      { noAck: true },
    );
    subscription.channel = channel;
    if (subscription.closed) {
      // Closed while it was being set up.
      this.connection.release(channel);
      await settleWithin(() => channel.close());
    }
  }
}

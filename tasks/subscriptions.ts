// Hearing events: each subscription is an exclusive, auto-deleted queue bound to the events
// exchange by a routing-key pattern, set up again after every reconnect until it is closed.
import type { Channel } from "amqplib";
import type { Logger } from "../lib/logger.ts";
import type { BrokerConnection, ChannelFactory, ConnectionPart } from "./connection.ts";

export type EventListener = (routingKey: string, payload: unknown) => void;

interface Subscription {
  pattern: string;
  listener: EventListener;
  channel?: Channel;
  closed: boolean;
}

export class EventSubscriptions implements ConnectionPart {
  private subscriptions: Subscription[] = [];

  constructor(
    private readonly connection: BrokerConnection,
    private readonly exchange: string,
    /** This process's own events come back (RabbitMQ has no no-local) and are dropped unread. */
    private readonly ownAppId: string,
    private readonly logger: Logger,
  ) {}

  async attach(model: ChannelFactory): Promise<void> {
    for (const subscription of this.subscriptions) await this.subscribeOn(model, subscription);
  }

  detach(): void {
    for (const subscription of this.subscriptions) subscription.channel = undefined;
  }

  /** Hears events whose routing key matches pattern, now and after every reconnect, until closed. */
  async subscribe(pattern: string, listener: EventListener): Promise<{ close(): Promise<void> }> {
    const subscription: Subscription = { pattern, listener, closed: false };
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
      await channel.close().catch(() => {}); // its exclusive queue goes with it
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
        try {
          subscription.listener(msg.fields.routingKey, JSON.parse(msg.content.toString()));
        } catch (err) {
          this.logger.warn({ err }, "ignored an unreadable event");
        }
      },
      { noAck: true },
    );
    subscription.channel = channel;
    if (subscription.closed) {
      // Closed while it was being set up.
      this.connection.release(channel);
      await channel.close().catch(() => {});
    }
  }
}

// Publishing straight on an app's events exchange, as anyone with access to the broker can:
// the tests' forger. A channel the broker closes (no such exchange yet) fails the confirm
// instead of leaving it waiting for ever.
import amqplib from "amqplib";
import { AMQP_URL } from "./stack.ts";

export interface EventForger {
  publish(routingKey: string, body: Buffer | string): void;
  /** Resolves once the broker took everything published so far. */
  confirmed(): Promise<void>;
  close(): Promise<void>;
}

export async function forgeEvents(queueName: string): Promise<EventForger> {
  const connection = await amqplib.connect(AMQP_URL);
  const channel = await connection.createConfirmChannel();
  const closed = new Promise<never>((_, reject) => {
    let failure: Error | undefined;
    channel.on("error", (err: Error) => (failure = err));
    channel.once("close", () => reject(failure ?? new Error("the channel closed")));
  });
  closed.catch(() => {}); // told through confirmed()
  return {
    publish: (routingKey, body) =>
      void channel.publish(`${queueName}.events`, routingKey, Buffer.from(body), { contentType: "application/json" }),
    confirmed: () => Promise.race([channel.waitForConfirms(), closed]),
    close: () => connection.close().catch(() => {}),
  };
}

/** Publishes these events, waits for the broker to take them, and disconnects. */
export async function forgeEventsOnce(
  queueName: string,
  messages: [routingKey: string, body: Buffer | string][],
): Promise<void> {
  const forger = await forgeEvents(queueName);
  try {
    for (const [routingKey, body] of messages) forger.publish(routingKey, body);
    await forger.confirmed();
  } finally {
    await forger.close();
  }
}

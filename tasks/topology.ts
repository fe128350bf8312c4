// The broker objects for a work queue Q, their names, and how they are declared (after
// every connect, by tasks/queue.ts):
//   Q                 durable work queue; rejected messages dead-letter to Q.dead
//   Q.retry.<N>ms     retries wait here for their backoff (per-message expiration),
//                     then dead-letter back into Q, so a waiting retry never sits in
//                     a worker's memory. RabbitMQ expires messages only at the head
//                     of a queue, so waits are grouped by size (N is a power of two
//                     of milliseconds): a long wait never holds up a much shorter one.
//   Q.dead            dead letters: poison messages and jobs that used all attempts
//   Q.events          topic exchange for task events and worker heartbeats
//
// With QUEUE_TYPE=quorum, Q is QUEUE_NAME.quorum (a queue cannot change type in place),
// and Q and Q.dead are quorum queues: replicated on a RabbitMQ cluster, and a message
// redelivered more than DELIVERY_LIMIT times is dead-lettered. The retry queues stay
// classic on both: they only hold waits, and per-message expiry is what they need.
import type { ConfirmChannel } from "amqplib";

/** Quorum queues dead-letter a message delivered more often than this (its worker keeps crashing on it). */
export const DELIVERY_LIMIT = 20;

export interface Topology {
  queueName: string;
  queueType?: "classic" | "quorum";
  retry: { baseMs: number; maxMs: number };
}

export const deadLetterQueueName = (queueName: string) => `${queueName}.dead`;
export const eventsExchangeName = (queueName: string) => `${queueName}.events`;

/** Retry waits round up to a power of two of milliseconds; each size has its own queue. */
export function retryBucket(delayMs: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, delayMs)));
}

export function retryQueueName(queueName: string, bucketMs: number): string {
  return `${queueName}.retry.${bucketMs}ms`;
}

/** Every retry queue a policy can use: from half the base delay (the smallest jittered wait) to the cap. */
export function retryQueueNames(queueName: string, baseMs: number, maxMs: number): string[] {
  const names: string[] = [];
  for (let bucket = retryBucket(baseMs / 2); bucket <= retryBucket(maxMs); bucket *= 2) names.push(retryQueueName(queueName, bucket));
  return names;
}

/** Declares everything above (idempotent: run after every connect). */
export async function declareTopology(channel: ConfirmChannel, { queueName, queueType, retry }: Topology): Promise<void> {
  const type = queueType === "quorum" ? { "x-queue-type": "quorum" } : {};
  const deadLetters = deadLetterQueueName(queueName);
  await channel.assertQueue(deadLetters, { durable: true, arguments: type });
  await channel.assertQueue(queueName, {
    durable: true,
    arguments: {
      ...type,
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": deadLetters,
      // A message that keeps coming back (its worker crashes on it) is dead-lettered.
      ...(queueType === "quorum" ? { "x-delivery-limit": DELIVERY_LIMIT } : {}),
    },
  });
  for (const name of retryQueueNames(queueName, retry.baseMs, retry.maxMs)) {
    await channel.assertQueue(name, { durable: true, arguments: { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queueName } });
  }
  await channel.assertExchange(eventsExchangeName(queueName), "topic", { durable: true });
}

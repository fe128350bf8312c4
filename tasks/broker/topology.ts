// The broker objects for a work queue Q, their names, and how they are declared (after
// every connect, by tasks/queue.ts):
//   Q                 durable work queue; rejected messages dead-letter to Q.dead
//   Q.retry.<N>ms     retries wait here for their backoff (per-message expiration),
//                     then dead-letter back into Q, so a waiting retry never sits in
//                     a worker's memory. RabbitMQ expires messages only at the head
//                     of a queue, so waits are grouped by size (N is a power of two
//                     of milliseconds): a long wait never holds up a much shorter one.
//   Q.bulk            reruns (tasks sent again by hand, one or thousands at once), with
//                     their own Q.bulk.retry.<N>ms; a worker consumes Q and Q.bulk and
//                     gives people's jobs the next free slot first (tasks/broker/lanes.ts), so
//                     a person's submit never waits behind a bulk retry
//   Q.dead            dead letters: poison messages and jobs that used all attempts (both lanes)
//   Q.events          topic exchange for task events and worker heartbeats
//
// With QUEUE_TYPE=quorum, Q is QUEUE_NAME.quorum (a queue cannot change type in place),
// and Q, Q.dead and the retry queues are quorum queues: replicated on a RabbitMQ cluster
// (on as many nodes as the broker's quorum_cluster_size, 3 unless changed), so losing a
// node loses neither a job nor a waiting retry, and a message redelivered more than
// DELIVERY_LIMIT times is dead-lettered. The retry queues are then Q.retry.<N>ms.quorum:
// classic ones of that name from before are left to drain into Q by themselves.
import type { ConfirmChannel } from "amqplib";

/** Quorum queues dead-letter a message delivered more often than this (its worker keeps crashing on it). */
export const DELIVERY_LIMIT = 20;

export interface Topology {
  queueName: string;
  queueType?: "classic" | "quorum";
  retry: { baseMs: number; maxMs: number };
}

export const deadLetterQueueName = (queueName: string) => `${queueName}.dead`;
/** The reruns' work queue, beside people's: see tasks/broker/lanes.ts. */
export const bulkQueueName = (queueName: string) => `${queueName}.bulk`;
export const eventsExchangeName = (queueName: string) => `${queueName}.events`;

/** Retry waits round up to a power of two of milliseconds; each size has its own queue. */
export function retryBucket(delayMs: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, delayMs)));
}

export function retryQueueName(
  queueName: string,
  bucketMs: number,
  queueType: Topology["queueType"] = "classic",
): string {
  return `${queueName}.retry.${bucketMs}ms${queueType === "quorum" ? ".quorum" : ""}`;
}

/** Every retry queue a policy can use: from half the base delay (the smallest jittered wait) to the cap. */
export function retryQueueNames(
  queueName: string,
  baseMs: number,
  maxMs: number,
  queueType: Topology["queueType"] = "classic",
): string[] {
  const names: string[] = [];
  for (let bucket = retryBucket(baseMs / 2); bucket <= retryBucket(maxMs); bucket *= 2)
    names.push(retryQueueName(queueName, bucket, queueType));
  return names;
}

/** Every queue declareTopology makes, of either type, to delete them (tests, benches). */
export function topologyQueueNames(queueName: string, retry: { baseMs: number; maxMs: number }): string[] {
  const bulk = bulkQueueName(queueName);
  const waits = (lane: string) => [
    ...retryQueueNames(lane, retry.baseMs, retry.maxMs),
    ...retryQueueNames(lane, retry.baseMs, retry.maxMs, "quorum"),
  ];
  return [queueName, deadLetterQueueName(queueName), bulk, ...waits(queueName), ...waits(bulk)];
}

/** Declares everything above (idempotent: run after every connect). */
export async function declareTopology(
  channel: ConfirmChannel,
  { queueName, queueType, retry }: Topology,
): Promise<void> {
  const type = queueType === "quorum" ? { "x-queue-type": "quorum" } : {};
  const deadLetters = deadLetterQueueName(queueName);
  await channel.assertQueue(deadLetters, { durable: true, arguments: type });
  // Reruns: a work queue and retry queues of their own, dead letters shared.
  await declareWorkQueue(channel, bulkQueueName(queueName), deadLetters, { queueType, retry });
  await declareWorkQueue(channel, queueName, deadLetters, { queueType, retry });
  await channel.assertExchange(eventsExchangeName(queueName), "topic", { durable: true });
}

/** A work queue that dead-letters to deadLetters, and the retry queues that lead back into it. */
async function declareWorkQueue(
  channel: ConfirmChannel,
  queueName: string,
  deadLetters: string,
  { queueType, retry }: Omit<Topology, "queueName">,
): Promise<void> {
  const type = queueType === "quorum" ? { "x-queue-type": "quorum" } : {};
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
  // Quorum queues dead-letter at most once unless told otherwise: an expired wait must reach Q even while Q elects a
  // new leader.
  const replicatedWait =
    queueType === "quorum"
      ? { ...type, "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" }
      : {};
  for (const name of retryQueueNames(queueName, retry.baseMs, retry.maxMs, queueType)) {
    await channel.assertQueue(name, {
      durable: true,
      arguments: { ...replicatedWait, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queueName },
    });
  }
}

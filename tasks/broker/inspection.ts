// Reading a queue message by message, for the monitor's dead letters and purge. Messages
// are taken with basic.get and not acknowledged while they are looked at; a message is
// removed only by an ack once the caller decided its fate, and closing the channel puts
// every other one back in the queue (RabbitMQ returns unacknowledged messages to where
// they were). So a peek loses nothing, and a crash half way removes nothing undecided.
import { createHash } from "node:crypto";
import type { GetMessage } from "amqplib";
import { settleWithin } from "./closing.ts";
import type { ChannelFactory } from "./connection.ts";

/** What a queued message says about itself: enough to show it and to find its task. */
export interface QueuedMessage {
  /** Its place from the head of the queue when it was read, from 1. */
  position: number;
  /** Names its content (message id, attempt and body): what a person asks to requeue or discard. */
  key: string;
  messageId: string | null;
  /** The task it names: its message id, or the taskId in its body. */
  taskId: string | null;
  /** x-attempt: the run it was published for. */
  attempt: number;
  /** Why RabbitMQ dead-lettered it (rejected, expired, delivery_limit) and from where, if it was. */
  deathReason: string | null;
  deathQueue: string | null;
  deadAt: string | null;
  /** How many times it was dead-lettered from that queue. */
  deaths: number;
  /** The body as text, cut at BODY_SHOWN characters. */
  body: string;
  size: number;
}

/**
 * Given the messages read (and the queue's length before reading), the positions of those to
 * remove: all at once, so the caller can act on them in batches.
 */
export type Decide = (messages: QueuedMessage[], total: number) => Promise<Set<number>>;

const BODY_SHOWN = 2000;
const UUID = /"taskId"\s*:\s*"([0-9a-f-]{36})"/;

/**
 * Reads up to `limit` messages from the head of `queue`, asks `decide` (if given) which to
 * remove, acks those, and returns the rest to the queue. `total` is the queue's length
 * before reading (messages other readers hold are not in it).
 */
export async function readQueue(
  model: ChannelFactory,
  queue: string,
  limit: number,
  decide?: Decide,
): Promise<{ total: number; messages: QueuedMessage[]; removed: number }> {
  const channel = await model.createChannel();
  channel.on("error", () => {});
  try {
    const { messageCount: total } = await channel.checkQueue(queue);
    const raws: GetMessage[] = [];
    while (raws.length < limit) {
      const raw = await channel.get(queue, { noAck: false });
      if (raw === false) break;
      raws.push(raw);
    }
    const messages = raws.map((raw, i) => describe(raw, i + 1));
    const remove = decide ? await decide(messages, total) : new Set<number>();
    raws.forEach((raw, i) => remove.has(i + 1) && channel.ack(raw));
    return { total, messages: messages.filter((m) => !remove.has(m.position)), removed: remove.size };
  } finally {
    // Acks go out before the close, on the same channel; everything not acked goes back.
    await settleWithin(() => channel.close());
  }
}

function describe(raw: GetMessage, position: number): QueuedMessage {
  const { properties, content } = raw;
  const headers = properties.headers ?? {};
  const deaths = Array.isArray(headers["x-death"]) ? (headers["x-death"] as unknown as Record<string, unknown>[]) : [];
  const first = deaths[0];
  const text = content.subarray(0, BODY_SHOWN * 4).toString("utf8");
  const messageId = typeof properties.messageId === "string" ? properties.messageId : null;
  const deadAt = first?.time as { value?: number } | Date | undefined;
  const key = createHash("sha256")
    .update(`${messageId}\n${String(headers["x-attempt"])}\n`)
    .update(content)
    .digest("hex")
    .slice(0, 16);
  return {
    position,
    key,
    messageId,
    taskId: messageId && /^[0-9a-f-]{36}$/.test(messageId) ? messageId : (UUID.exec(text)?.[1] ?? null),
    attempt: Number(headers["x-attempt"]) || 1,
    deathReason: typeof first?.reason === "string" ? first.reason : null,
    deathQueue: typeof first?.queue === "string" ? first.queue : null,
    deadAt: isoTime(
      deadAt instanceof Date ? deadAt.getTime() : typeof deadAt?.value === "number" ? deadAt.value * 1000 : NaN,
    ),
    deaths: typeof first?.count === "number" && Number.isSafeInteger(first.count) ? first.count : deaths.length,
    body: text.slice(0, BODY_SHOWN),
    size: content.length,
  };
}

/** A header's time as ISO text, or null: anyone can publish a letter with a time no Date can hold. */
function isoTime(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * One reader of a queue at a time in this process. Messages a reader holds are invisible to
 * the others, so two at once would each see part of the queue, and an action would find its
 * count changed or its letter gone: a person's action waits for the read in hand instead,
 * ahead of the looks waiting. Looks at the same queue and length share one read, so a page
 * refreshed in a loop holds the queue for one read at a time, not one per request.
 */
export class QueueReaders {
  private busy = false;
  private readonly waiting = { act: [] as (() => void)[], look: [] as (() => void)[] };
  private readonly looks = new Map<string, ReturnType<typeof readQueue>>();

  /** `model` is asked for the connection when the turn comes (the one there was may be gone by then). */
  read(model: () => ChannelFactory, queue: string, limit: number, decide?: Decide): ReturnType<typeof readQueue> {
    if (decide) return this.inTurn("act", () => readQueue(model(), queue, limit, decide));
    const key = `${queue}\n${limit}`;
    let look = this.looks.get(key);
    if (!look) {
      look = this.inTurn("look", () => readQueue(model(), queue, limit)).finally(() => this.looks.delete(key));
      this.looks.set(key, look);
    }
    return look;
  }

  private async inTurn<T>(kind: "act" | "look", read: () => Promise<T>): Promise<T> {
    // The reader that finishes hands its turn straight to the next, so none can slip in between.
    if (this.busy) await new Promise<void>((resolve) => this.waiting[kind].push(resolve));
    else this.busy = true;
    try {
      return await read();
    } finally {
      const next = this.waiting.act.shift() ?? this.waiting.look.shift();
      if (next) next();
      else this.busy = false;
    }
  }
}

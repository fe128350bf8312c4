// Fans task events out to the browsers connected to /events. Each event gets an id and
// the latest are kept, so a browser that reconnects with Last-Event-ID gets what it
// missed; one that fell too far behind is told to take a fresh snapshot.
import { randomBytes } from "node:crypto";
import type { AppEvent } from "./events.ts";

export interface NumberedEvent {
  id: number;
  event: AppEvent;
  /** The event as JSON, made once for every stream that sends it. */
  data: string;
}

/**
 * What is kept for replay: at most this many events and this many bytes of them. A replay is
 * written to the stream at once, and a stream holding 256 KB unsent counts as a reader gone
 * (routes/events.ts): more would cut off the browser it is for, every time it came back.
 */
export const HISTORY_LIMITS = { events: 500, bytes: 128 * 1024 };

type Subscriber = (event: NumberedEvent) => void;

export class EventHub {
  private nextId = 1;
  private readonly recent: NumberedEvent[] = [];
  private recentBytes = 0;
  private readonly subscribers = new Set<Subscriber>();
  private currentEpoch = randomBytes(6).toString("hex");
  private audience?: (watching: boolean) => Promise<void> | void;
  private live: Promise<void> = Promise.resolve();

  constructor(private readonly keep = HISTORY_LIMITS) {}

  publish(event: AppEvent): void {
    // Browsers hear of new photos and of the task's new state as two events.
    if (event.type === "task" && event.photos) {
      const { photos, ...change } = event;
      if (photos.length > 0) this.publish({ type: "photos", taskId: change.task.id, photos });
      event = change;
    }
    const numbered = { id: this.nextId++, event, data: JSON.stringify(event) };
    this.recent.push(numbered);
    this.recentBytes += sizeOf(numbered);
    // The newest always stays: a browser one event behind is sent it, not a snapshot.
    while (this.recent.length > 1 && (this.recent.length > this.keep.events || this.recentBytes > this.keep.bytes)) {
      this.recentBytes -= sizeOf(this.recent.shift()!);
    }
    for (const subscriber of this.subscribers) subscriber(numbered);
  }

  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    if (this.subscribers.size === 1 && this.audience) this.live = Promise.resolve(this.audience(true)).catch(() => {});
    return () => {
      if (this.subscribers.delete(subscriber) && this.subscribers.size === 0) void this.audience?.(false);
    };
  }

  /**
   * Counts as a watcher for a while: a page about to load its script holds the hub, so this
   * web is already hearing every event when the page says which one it was made after.
   */
  async hold(ms: number): Promise<void> {
    // One hold, extended by each page: pages come by the thousand, and every subscriber is
    // called for every event.
    this.heldUntil = Math.max(this.heldUntil, Date.now() + ms);
    if (!this.releaseHold) {
      this.releaseHold = this.subscribe(() => {});
      const check = () => {
        const left = this.heldUntil - Date.now();
        if (left > 0) return void setTimeout(check, left).unref();
        this.releaseHold?.();
        this.releaseHold = undefined;
      };
      setTimeout(check, ms).unref();
    }
    await this.live;
  }
  private heldUntil = 0;
  private releaseHold?: () => void;

  /** Is any browser connected? */
  get watched(): boolean {
    return this.subscribers.size > 0;
  }

  /** Told when the first browser starts watching (true) and when the last one leaves (false). */
  onAudience(listener: (watching: boolean) => Promise<void> | void): void {
    this.audience = listener;
  }

  /** Resolves once what the first watcher set off (hearing other processes' events) is in place. */
  whenLive(): Promise<void> {
    return this.live;
  }

  /** Ids restart with the process; the epoch tells a browser its Last-Event-ID is from another life. */
  get epoch(): string {
    return this.currentEpoch;
  }

  /** After a gap in what this hub heard: earlier ids mean nothing now, so browsers take a snapshot. */
  restart(): void {
    this.currentEpoch = randomBytes(6).toString("hex");
    this.recent.length = 0;
    this.recentBytes = 0;
  }

  /** Bytes of the events kept for replay. */
  get heldBytes(): number {
    return this.recentBytes;
  }

  /** Events after lastId, or undefined when they are no longer all kept. */
  since(lastId: number): NumberedEvent[] | undefined {
    if (lastId >= this.nextId) return undefined;
    const oldest = this.recent[0]?.id ?? this.nextId;
    if (lastId < oldest - 1) return undefined;
    return this.recent.filter((e) => e.id > lastId);
  }

  get lastId(): number {
    return this.nextId - 1;
  }
}

/** About what the event takes on a stream: its JSON (mostly one byte a character) and its id and type lines. */
function sizeOf(numbered: NumberedEvent): number {
  return numbered.data.length + 64;
}

// Fans task events out to the browsers connected to /events. Each event gets an id and
// the last few hundred are kept, so a browser that reconnects with Last-Event-ID gets
// what it missed; one that fell too far behind is told to take a fresh snapshot.
import { randomBytes } from "node:crypto";
import type { AppEvent } from "./events.ts";

export interface NumberedEvent {
  id: number;
  event: AppEvent;
}

type Subscriber = (event: NumberedEvent) => void;

export class EventHub {
  private nextId = 1;
  private readonly recent: NumberedEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  /** Ids restart with the process; the epoch tells a browser its Last-Event-ID is from another life. */
  readonly epoch = randomBytes(6).toString("hex");

  constructor(private readonly keep = 500) {}

  publish(event: AppEvent): void {
    // Browsers hear of new photos and of the task's new state as two events.
    if (event.type === "task" && event.photos) {
      const { photos, ...change } = event;
      if (photos.length > 0) this.publish({ type: "photos", taskId: change.task.id, photos });
      event = change;
    }
    const numbered = { id: this.nextId++, event };
    this.recent.push(numbered);
    if (this.recent.length > this.keep) this.recent.shift();
    for (const subscriber of this.subscribers) subscriber(numbered);
  }

  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
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

// Two lanes of work share a worker's WORKER_CONCURRENCY slots: people's submits (the work
// queue Q) and reruns (Q.bulk: tasks sent again by hand, a group retry of thousands at
// once). Each lane has its own consumer: people's with a prefetch of the whole concurrency,
// so a person's job is delivered at once however many reruns wait; the reruns' with half
// of it, so they never fill the worker (nor its dog.ceo turns: lib/platform/rateGate.ts lets a
// rerun's call wait behind people's). When a slot frees, a waiting person's job takes it
// before any rerun. Celery routes such work to a queue of its own for the same reason;
// RabbitMQ's priorities are not used, as quorum queues (3.10) do not support them.
import type { JobHandler } from "./consuming.ts";

export type Lane = "people" | "bulk";

export function sharedSlots(size: number) {
  let free = size;
  const waiting: Record<Lane, (() => void)[]> = { people: [], bulk: [] };
  const release = () => {
    const next = waiting.people.shift() ?? waiting.bulk.shift();
    if (next) next();
    else free += 1;
  };
  return {
    /** Jobs running now: at most `size` (jobs delivered and waiting for a slot are not counted). */
    get running(): number {
      return size - free;
    },
    /** The handler, run only in a free slot, people's lane first. */
    wrap(lane: Lane, handler: JobHandler): JobHandler {
      return async (delivery) => {
        if (free > 0) free -= 1;
        else await new Promise<void>((go) => waiting[lane].push(go));
        try {
          return await handler(delivery);
        } finally {
          release();
        }
      };
    },
  };
}

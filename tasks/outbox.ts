// The outbox relay: publishes accepted jobs from the database to RabbitMQ with publisher
// confirms, and marks them sent only once the broker confirmed. Whatever is unsent when
// the broker is away goes out when it is back (a confirm lost in a crash means the job
// is published twice, which the worker's idempotent handler absorbs).
import type { Db } from "../lib/db.ts";
import type { EventSink } from "../lib/events.ts";
import type { Logger } from "../lib/logger.ts";
import type { JobDispatcher } from "../lib/tasks.ts";
import { toTaskView } from "../lib/views.ts";
import type { Broker } from "./queue.ts";

const BATCH = 50;

export class OutboxRelay implements JobDispatcher {
  private draining?: Promise<void>;
  private again = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly deps: { db: Db; broker: Broker; events: EventSink; logger: Logger; pollMs?: number },
  ) {}

  start(): void {
    this.deps.broker.onConnected(() => this.kick());
    // A safety net for rows written by another process or left by a failed publish.
    this.timer = setInterval(() => this.kick(), this.deps.pollMs ?? 2000);
    this.timer.unref();
    this.kick();
  }

  async dispatch(taskId: string, waitMs: number): Promise<boolean> {
    const sent = this.waitFor(taskId, waitMs);
    this.kick();
    return sent;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err) => this.deps.logger.error({ err }, "outbox relay failed; will try again"))
      .finally(() => {
        this.draining = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.draining;
  }

  /** How many accepted jobs the broker has not confirmed yet. */
  pending(): Promise<number> {
    return this.deps.db.outboxMessage.count({ where: { sentAt: null } });
  }

  private async drain(): Promise<void> {
    const { db, broker, logger } = this.deps;
    while (!this.stopped && broker.isConnected()) {
      const batch = await db.outboxMessage.findMany({ where: { sentAt: null }, orderBy: { id: "asc" }, take: BATCH });
      if (batch.length === 0) return;
      for (const message of batch) {
        try {
          await broker.publishJob(Buffer.from(message.body), { messageId: message.taskId });
        } catch (err) {
          const reason = (err as Error).message;
          await db.outboxMessage.update({ where: { id: message.id }, data: { tries: { increment: 1 }, lastError: reason } });
          logger.warn({ taskId: message.taskId, reason }, "job not published yet; it stays in the outbox");
          return;
        }
        const now = new Date();
        const [, , task] = await db.$transaction([
          db.outboxMessage.update({ where: { id: message.id }, data: { sentAt: now, tries: { increment: 1 } } }),
          db.task.updateMany({ where: { id: message.taskId, queuedAt: null }, data: { queuedAt: now } }),
          db.task.findUnique({ where: { id: message.taskId } }),
        ]);
        // Only news while the task waits: once a worker has it, the worker's events tell more.
        if (task?.state === "PENDING") this.deps.events.emit({ type: "task", task: toTaskView(task) });
        this.resolve(message.taskId);
      }
    }
  }

  private waitFor(taskId: string, waitMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const set = this.waiters.get(taskId) ?? new Set();
      this.waiters.set(taskId, set);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        set.delete(onSent);
        if (set.size === 0) this.waiters.delete(taskId);
        resolve(ok);
      };
      const onSent = () => done(true);
      const timer = setTimeout(() => done(false), waitMs);
      set.add(onSent);
    });
  }

  private resolve(taskId: string): void {
    for (const waiter of this.waiters.get(taskId) ?? []) waiter();
  }
}

// The outbox relay: publishes accepted jobs from the database to RabbitMQ with publisher
// confirms, and marks them sent only once the broker confirmed. It takes a batch of rows
// (leased, so another relay leaves them alone), publishes them all, awaits their confirms
// together and marks the batch sent in one statement. Whatever is unsent when the broker
// is away goes out when it is back (a confirm lost in a crash means the job is published
// twice, which the worker's idempotent claim absorbs).
import type { Lifecycle, OutboxJob } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { inSpan, SpanKind, traceparentIn } from "../lib/platform/tracing.ts";
import type { JobDispatcher } from "../lib/useCases/tasks.ts";
import { isRerun } from "./messages.ts";
import type { Broker } from "./queue.ts";

const BATCH = 200;
/**
 * Batches awaiting their confirms at once. Under load each is a submit or a few, so with too
 * few in flight, submits queue behind each other's confirms; beyond this, jobs wait for a
 * batch and go together.
 */
const BATCHES_IN_FLIGHT = 16;
/** How long a relay may hold rows it is publishing before another may take them. */
const LEASE_MS = 30_000;

export interface OutboxRelayOptions {
  lifecycle: Lifecycle;
  broker: Broker;
  logger: Logger;
  pollMs?: number;
  /** Only rows at least this old: a worker's sweep leaves fresh rows to the web that wrote them. */
  minAgeMs?: number;
}

type Dispatched = { queued: boolean; queuedAt?: Date };
type Waiter = (result: Dispatched) => void;

export class OutboxRelay implements JobDispatcher {
  private readonly batches = new Set<Promise<void>>();
  /** Confirmed batches being marked sent: outside the batches' limit, so a slow write never holds new publishes back. */
  private readonly marking = new Set<Promise<void>>();
  /** Jobs written by this process, already leased to it: published without reading them back. */
  private handedOver: OutboxJob[] = [];
  private again = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private waiters = new Map<string, Set<Waiter>>();

  constructor(private readonly deps: OutboxRelayOptions) {}

  start(): void {
    this.deps.broker.onConnected(() => this.kick());
    // A safety net for rows written by another process or left by a failed publish.
    this.timer = setInterval(() => this.kick(), this.deps.pollMs ?? 2000);
    this.timer.unref();
    this.kick();
  }

  /** Publishes a job this process has just written (and holds the lease of) with the next batch. */
  dispatch(job: OutboxJob, waitMs: number): Promise<Dispatched> {
    const sent = this.waitFor(job.taskId, waitMs);
    this.handedOver.push(job);
    this.kick();
    return sent;
  }

  /**
   * Starts a batch now, beside those still waiting for their confirms (up to a few), so
   * a new job waits for one confirm round trip, not for the batch ahead of it too.
   */
  kick(): void {
    if (this.stopped) return;
    if (!this.deps.broker.isConnected()) {
      // Give the jobs in hand back to the table, so the relay that first reaches the broker sends them.
      const jobs = this.handedOver.splice(0);
      if (jobs.length > 0)
        this.deps.lifecycle
          .releaseOutbox(jobs.map((j) => j.id))
          .catch((err) => this.deps.logger.warn({ err }, "could not release outbox leases"));
      return;
    }
    if (this.batches.size >= BATCHES_IN_FLIGHT) {
      this.again = true;
      return;
    }
    const batch: Promise<void> = this.relayBatch()
      .then((full) => {
        if (full) this.again = true;
      })
      .catch((err) => this.deps.logger.error({ err }, "outbox relay failed; will try again"))
      .finally(() => {
        this.batches.delete(batch);
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
    this.batches.add(batch);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.batches.size > 0) await Promise.all(this.batches);
    await Promise.all(this.marking);
    await this.deps.lifecycle.releaseOutbox(this.handedOver.splice(0).map((j) => j.id));
  }

  /** How many accepted jobs the broker has not confirmed yet. */
  pending(): Promise<number> {
    return this.deps.lifecycle.outboxBacklog();
  }

  /** Publishes one leased batch; true when it was full, so more rows may be waiting. */
  private async relayBatch(): Promise<boolean> {
    const { lifecycle, broker, logger } = this.deps;
    const batch =
      this.handedOver.length > 0
        ? this.handedOver.splice(0, BATCH)
        : await lifecycle.leaseOutbox(BATCH, LEASE_MS, this.deps.minAgeMs);
    if (batch.length === 0) return false;
    const results = await Promise.allSettled(
      batch.map((m) =>
        inSpan(
          "publish job",
          {
            kind: SpanKind.PRODUCER,
            traceparent: () => traceparentIn(m.body),
            attributes: () => ({ "gendog.task_id": m.taskId, "gendog.attempt": m.attempt }),
          },
          () =>
            broker.publishJob(Buffer.from(m.body), { messageId: m.taskId, attempt: m.attempt, bulk: isRerun(m.body) }),
        ),
      ),
    );
    const sent = batch.filter((_, i) => results[i]!.status === "fulfilled");
    const unsent = batch.filter((_, i) => results[i]!.status === "rejected");
    // The broker has them: whoever waits is told now, and the rows say so a moment later
    // (a crash in between only means the job is published again, which a claim absorbs).
    const queuedAt = new Date();
    for (const message of sent) this.resolve(message.taskId, { queued: true, queuedAt });
    this.markQueued(sent);
    if (unsent.length > 0) {
      const reason = ((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason as Error).message;
      await lifecycle.markUnsent(
        unsent.map((m) => m.id),
        reason,
      );
      logger.warn({ jobs: unsent.length, reason }, "jobs not published yet; they stay in the outbox");
      return false; // the poll or the next connect tries again, not a tight loop
    }
    return batch.length === BATCH || this.handedOver.length > 0;
  }

  /**
   * Writes that the broker has these jobs, while the next batches publish. Until it is written a row
   * stays leased to this relay; if the write fails, the lease runs out and a relay sends the job again
   * (which the worker's claim absorbs), as after a crash between the confirm and the write.
   */
  private markQueued(sent: OutboxJob[]): void {
    const marked: Promise<void> = this.deps.lifecycle
      .markQueued(sent)
      .catch((err) => this.deps.logger.error({ err }, "could not mark published jobs as sent; they go again later"))
      .finally(() => this.marking.delete(marked));
    this.marking.add(marked);
  }

  private waitFor(taskId: string, waitMs: number): Promise<Dispatched> {
    return new Promise((resolve) => {
      const set = this.waiters.get(taskId) ?? new Set();
      this.waiters.set(taskId, set);
      const done: Waiter = (result) => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(taskId);
        resolve(result);
      };
      const timer = setTimeout(() => done({ queued: false }), waitMs);
      set.add(done);
    });
  }

  private resolve(taskId: string, result: Dispatched): void {
    for (const waiter of this.waiters.get(taskId) ?? []) waiter(result);
  }
}

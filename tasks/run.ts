// One run of a claimed task: ask dog.ceo for photo links, keep the trusted ones, store them,
// and end the run (SUCCESS, RETRY or FAILURE). Breed, sub-breed and limit come from the task
// row, never from the message. Every state change goes through lib/lifecycle/lifecycle.ts.
import { DogApiError, type DogApi } from "../lib/dogs/dogApi.ts";
import type { Claim, Lifecycle } from "../lib/lifecycle/lifecycle.ts";
import type { Logger } from "../lib/platform/logger.ts";
import { noMetrics, type AttemptOutcome, type WorkMetrics } from "../lib/platform/metrics.ts";
import { inSpan, SpanKind } from "../lib/platform/tracing.ts";
import type { Outcome } from "./queue.ts";
import { backoffDelay, budgetSpent, runsUsed, type RetryPolicy } from "./retryPolicy.ts";

export interface RunDeps {
  lifecycle: Lifecycle;
  dogApi: DogApi;
  retry: RetryPolicy;
  /** Links from anywhere else are dropped: only these origins' images are stored. */
  imageOrigins: string[];
  random?: () => number;
  metrics?: WorkMetrics;
}

export type ClaimedRun = Extract<Claim, { kind: "run" }>;

/** What to do with the message, and how the run ended. */
export type RunResult = { outcome: Outcome; attempt: AttemptOutcome };

/** Longer links are not stored: dog.ceo's are under 100 characters. */
export const MAX_LINK_LENGTH = 2048;

const ack: Outcome = { action: "ack" };
const deadLetter: Outcome = { action: "dead-letter" };

export async function runTask(
  deps: RunDeps,
  claim: ClaimedRun,
  log: Logger,
  call: { signal?: AbortSignal; rerun?: boolean } = {},
): Promise<RunResult> {
  const { task } = claim;
  log.info({ breed: task.breed, subBreed: task.subBreed, limit: task.limit, run: claim.number }, "task started");
  const used = runsUsed(claim);
  if (budgetSpent(deps.retry, used - 1)) {
    // Every earlier run of the budget ended without writing how (a worker died each time,
    // or the database failed as it ended): this run is one too many, so stop here.
    const reason = `gave up after ${used - 1} attempts: the worker stopped before finishing each time`;
    await deps.lifecycle.fail(claim, reason);
    log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
    return { outcome: deadLetter, attempt: "FAILURE" };
  }
  const answer = await askDogApi(deps, claim, call);
  if (answer instanceof DogApiError) return dogApiFailed(deps, claim, answer, log);
  return storePhotos(deps, claim, answer, log, call.signal);
}

/** The photo links dog.ceo sends for the task, or its error (anything unforeseen counts as transient). */
async function askDogApi(
  deps: RunDeps,
  { task }: ClaimedRun,
  call: { signal?: AbortSignal; rerun?: boolean },
): Promise<string[] | DogApiError> {
  const metrics = deps.metrics ?? noMetrics;
  const asked = performance.now();
  const span = {
    kind: SpanKind.CLIENT,
    attributes: () => ({ "gendog.breed": task.breed, "gendog.limit": task.limit }),
  };
  try {
    const links = await inSpan("dog.ceo random images", span, () =>
      deps.dogApi.randomImages(task.breed, task.subBreed ?? undefined, task.limit, call),
    );
    metrics.dogApiCall((performance.now() - asked) / 1000);
    return links;
  } catch (err) {
    const error = err instanceof DogApiError ? err : new DogApiError("transient", (err as Error).message);
    if (error.kind !== "stopped") metrics.dogApiCall((performance.now() - asked) / 1000, error);
    return error;
  }
}

/** Stopped by hand, refused (FAILURE at once), or transient: RETRY while the budget lasts. */
async function dogApiFailed(deps: RunDeps, claim: ClaimedRun, error: DogApiError, log: Logger): Promise<RunResult> {
  if (error.kind === "stopped") {
    // The web recorded the task REVOKED (and this run with it) before telling us.
    log.info("task stopped by hand while running; its dog.ceo call abandoned");
    return { outcome: ack, attempt: "REVOKED" };
  }
  const reason = error.message.slice(0, 500);
  if (error.kind !== "transient") {
    await deps.lifecycle.fail(claim, `dog.ceo: ${error.message}`);
    log.warn({ reason }, "task failed: dog.ceo refused it");
    return { outcome: ack, attempt: "FAILURE" };
  }
  const used = runsUsed(claim);
  if (budgetSpent(deps.retry, used)) {
    await deps.lifecycle.fail(claim, `gave up after ${used} attempts: ${error.message}`);
    log.warn({ reason }, "task failed: retries used up; dead-lettering the job");
    return { outcome: deadLetter, attempt: "FAILURE" };
  }
  const delayMs = backoffDelay(deps.retry, used, error.retryAfterMs, deps.random);
  await deps.lifecycle.retry(claim, error.message, delayMs);
  log.warn({ reason, delayMs }, "transient failure; retry scheduled");
  return { outcome: { action: "retry", attempt: claim.number + 1, delayMs }, attempt: "RETRY" };
}

/** SUCCESS with at most the task's limit of trusted links; dog.ceo's answer never decides how much is stored. */
async function storePhotos(
  deps: RunDeps,
  claim: ClaimedRun,
  links: string[],
  log: Logger,
  signal?: AbortSignal,
): Promise<RunResult> {
  const { task } = claim;
  const kept = keepTrustedLinks(links, deps.imageOrigins, log, task.limit);
  if (kept.length === 0 && links.length > 0) {
    // Not a task that found no photos: every photo was refused here. Asking again would get
    // links on the same host, so it fails at once, saying which host and what would help.
    const photoLinks = `photo link${links.length === 1 ? "" : "s"}`;
    const reason = `none of the ${links.length} ${photoLinks} dog.ceo sent is on an allowed image host (the first is on ${hostOf(links[0]!)}). An operator can add that host to IMAGE_ORIGINS, then retry this task.`;
    await deps.lifecycle.fail(claim, reason);
    log.warn({ reason }, "task failed: every photo link was on a host that is not allowed");
    return { outcome: ack, attempt: "FAILURE" };
  }
  const stored = await deps.lifecycle.succeed({ ...claim, breed: task.breed, subBreed: task.subBreed }, kept);
  if (stored === undefined && signal?.aborted) {
    log.info("task stopped by hand while running; its photos are not stored");
    return { outcome: ack, attempt: "REVOKED" };
  }
  if (stored === undefined) {
    log.info("a later run of this task took over (or it was stopped); leaving the result to it");
    return { outcome: ack, attempt: "SKIPPED" };
  }
  log.info({ photos: stored.task.photoCount }, "task succeeded");
  return { outcome: ack, attempt: "SUCCESS" };
}

/** Where a link points, for a message: its origin, or that it is no address at all. */
function hostOf(link: string): string {
  if (!URL.canParse(link)) return "no valid address";
  const url = new URL(link);
  return (url.origin === "null" ? `a ${url.protocol} address` : url.origin).slice(0, 100);
}

/**
 * Keeps up to `max` links that point at a trusted image origin (https, or the configured
 * stand-in), once each, and no longer than MAX_LINK_LENGTH. It stops reading once it has
 * enough, so a reply with thousands of links costs no more than one with `max`.
 */
export function keepTrustedLinks(links: string[], origins: string[], log: Logger, max = Infinity): string[] {
  const kept = new Set<string>();
  let dropped = 0;
  let example: string | undefined;
  let read = 0;
  for (const link of links) {
    if (kept.size >= max) break;
    read += 1;
    const url = link.length <= MAX_LINK_LENGTH && URL.canParse(link) ? new URL(link) : undefined;
    // Origins are compared with their scheme, so http://images.dog.ceo is not trusted.
    if (url && origins.includes(url.origin) && !url.username && !url.password && url.href.length <= MAX_LINK_LENGTH) {
      kept.add(url.href);
    } else {
      dropped += 1;
      example ??= link.slice(0, 200);
    }
  }
  if (dropped > 0) log.warn({ dropped, example }, "dropped links that are not on a trusted image host");
  if (read < links.length)
    log.warn(
      { received: links.length, kept: kept.size },
      "dog.ceo sent more links than asked for; kept the task's limit",
    );
  return [...kept];
}

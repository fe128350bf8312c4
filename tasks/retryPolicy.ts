// The retry budget and the wait before each retry, from RETRY_MAX_ATTEMPTS, RETRY_BASE_MS and
// RETRY_MAX_MS: the same rules however a run ended (dog.ceo's error or an unexpected one).

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/** Runs of this budget so far, this one included: a task retried by hand starts a new budget. */
export const runsUsed = (run: { number: number; task: { attemptBase: number } }) => run.number - run.task.attemptBase;

/** The one rule for the retry budget: after `used` runs (or tries), is another one allowed? */
export const budgetSpent = (policy: RetryPolicy, used: number) => used >= policy.maxAttempts;

/** Exponential backoff with "equal jitter": half the delay fixed, half random. */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.round(Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0)));
}

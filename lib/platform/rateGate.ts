// A fair ceiling on how often something may start: a token bucket that holds up to `burst`
// tokens, refills `perSecond` a second, and spends one per turn. Callers wait in one FIFO queue,
// so under load every caller gets its turn in arrival order and none starves. A waiting caller is
// only a pending promise, and one timer serves the whole queue.

export interface RateGate {
  /**
   * Resolves at the caller's turn; turns are given in the order they were asked for, except
   * that a `later` caller (a rerun: see tasks/broker/lanes.ts) waits while any other caller waits.
   */
  turn(later?: boolean): Promise<void>;
  /** Rejects every waiting caller with `reason`; turns asked for afterwards are not held. */
  close(reason: unknown): void;
}

/**
 * burst defaults to one second's worth (at least 1): a worker that starts with a full queue
 * sends that many at once, then no more than perSecond a second, and an idle worker's first
 * requests never wait.
 */
export function createRateGate(perSecond: number, burst = Math.max(1, perSecond)): RateGate {
  if (!(perSecond > 0) || !(burst >= 1))
    throw new RangeError(`a rate gate needs perSecond > 0 and burst >= 1, got ${perSecond} and ${burst}`);
  type Waiter = { go: () => void; stop: (reason: unknown) => void };
  const first: Waiter[] = [];
  const later: Waiter[] = [];
  const waiting = () => first.length + later.length;
  let tokens = burst;
  let refilledAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function admit(): void {
    timer = undefined;
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - refilledAt) * perSecond) / 1000);
    refilledAt = now;
    while (waiting() > 0 && tokens >= 1) {
      tokens -= 1;
      (first.shift() ?? later.shift())!.go();
    }
    // Timers may fire a hair early against performance.now(); then this simply runs again 1 ms later.
    if (waiting() > 0) timer = setTimeout(admit, Math.max(1, Math.ceil(((1 - tokens) * 1000) / perSecond)));
  }

  return {
    turn(isLater = false) {
      if (closed) return Promise.resolve();
      return new Promise<void>((go, stop) => {
        (isLater ? later : first).push({ go, stop });
        // With a timer pending, callers ahead are waiting: this one queues behind them.
        if (!timer) admit();
      });
    },
    close(reason) {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      for (const { stop } of [...first.splice(0), ...later.splice(0)]) stop(reason);
    },
  };
}

// Answers remembered for a while, the one cache the app has: the monitor's counts, history and
// queue numbers, read by every live page on every refresh, and dog.ceo's breed list.
//
// A fresh answer is given as it is. Past its time, while a fresh one is read (one read per
// key at a time), the old answer is still given for a while, so under steady traffic nobody
// waits for the read; older than that, askers wait for the fresh one, so a page seen after a
// quiet spell is never far behind. An answer that failed is not kept: the next asker reads
// again (a failed refresh leaves the old answer).
//
// forget(key) drops an answer that an action just made wrong (the monitor's purge, a retry),
// and any read already under way: the page the person is sent back to shows what they did.

export interface CacheTimes<V> {
  /** How long an answer is fresh, from when it came back; may depend on the answer. */
  ttlMs: number | ((value: V) => number);
  /** Until this age the old answer is given while a fresh one is read (default twice ttlMs; Infinity: always). */
  staleMs?: number;
  /** How long an asker of an old answer waits for the fresh one before taking the old (default 0). */
  waitMs?: number;
}

type Slot<V> = { answer?: { at: number; value: V; ttlMs: number }; reading?: Promise<V> };

export type Cached<K, V> = ((key: K) => Promise<V>) & { forget(key: K): void };

export function cachedFor<K, V>(times: number | CacheTimes<V>, load: (key: K) => Promise<V>): Cached<K, V> {
  const { ttlMs, staleMs, waitMs = 0 } = typeof times === "number" ? { ttlMs: times } : times;
  const ttlOf = typeof ttlMs === "number" ? () => ttlMs : ttlMs;
  const slots = new Map<K, Slot<V>>();

  // A read stores its answer in the slot it was started for: once forgotten, in none that is asked.
  const read = (key: K, slot: Slot<V>): Promise<V> => {
    const reading = load(key);
    const done = () => slot.reading === reading && (slot.reading = undefined);
    reading.then((value) => {
      slot.answer = { at: Date.now(), value, ttlMs: ttlOf(value) };
      done();
    }, done);
    return reading;
  };

  const cached = (key: K): Promise<V> => {
    let slot = slots.get(key);
    if (!slot) slots.set(key, (slot = {}));
    const { answer } = slot;
    const age = answer ? Date.now() - answer.at : Infinity;
    if (answer && age < answer.ttlMs) return Promise.resolve(answer.value);
    const reading = (slot.reading ??= read(key, slot));
    if (!answer || age >= (staleMs ?? 2 * answer.ttlMs)) return reading;
    if (waitMs <= 0) return Promise.resolve(answer.value);
    const old = () => answer.value;
    return Promise.race([
      reading.catch(old),
      new Promise<V>((resolve) => setTimeout(() => resolve(old()), waitMs).unref()),
    ]);
  };

  return Object.assign(cached, { forget: (key: K) => void slots.delete(key) });
}

// Answers remembered for a few seconds: the monitor's counts, history and failure groups
// are read by every live page on every refresh, and one query every few seconds serves them
// all. An answer that failed is forgotten at once, so the next asker tries again.
//
// Past its time, an answer is still given for as long again while a fresh one is read in
// the background: under steady traffic no asker waits for the query (with 20,000 tasks, the
// one request in 5 s that did was the p99 of /tasks and /api/tasks). Older than that, the
// asker waits for the fresh one, so a page seen after a quiet spell is never far behind.
//
// forget(key) drops an answer that an action just made wrong (the monitor's purge, a retry):
// the page the person is sent back to reads anew and shows what they did.
export function cachedFor<K, V>(ttlMs: number, load: (key: K) => Promise<V>): ((key: K) => Promise<V>) & { forget(key: K): void } {
  const cache = new Map<K, { at: number; value: Promise<V>; refreshing?: boolean }>();
  // Bumped by forget(): an answer read before it is not kept.
  let generation = 0;
  const read = (key: K) => {
    const value = load(key);
    const entry = { at: Date.now(), value };
    const asked = generation;
    value.then(
      () => asked === generation && cache.set(key, entry),
      () => cache.get(key)?.value === value && cache.delete(key),
    );
    return entry;
  };
  const cached = (key: K) => {
    const hit = cache.get(key);
    const age = hit ? Date.now() - hit.at : Infinity;
    if (hit && age < ttlMs) return hit.value;
    if (hit && age < 2 * ttlMs) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        read(key).value.catch(() => (hit.refreshing = false));
      }
      return hit.value;
    }
    const entry = read(key);
    cache.set(key, entry);
    return entry.value;
  };
  const forget = (key: K) => {
    generation += 1;
    cache.delete(key);
  };
  return Object.assign(cached, { forget });
}

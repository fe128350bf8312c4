// Answers remembered for a few seconds: the monitor's counts, history and failure groups
// are read by every live page on every refresh, and one query every few seconds serves them
// all. An answer that failed is forgotten at once, so the next asker tries again.
export function cachedFor<K, V>(ttlMs: number, load: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const cache = new Map<K, { at: number; value: Promise<V> }>();
  return (key) => {
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value;
    const value = load(key);
    cache.set(key, { at: Date.now(), value });
    value.catch(() => cache.get(key)?.value === value && cache.delete(key));
    return value;
  };
}

// The breeds a person can pick: dog.ceo's own list, cached for an hour. When dog.ceo
// cannot be reached, the bundled snapshot keeps the form usable (logged once).
import snapshot from "./breeds-snapshot.json" with { type: "json" };
import { cachedFor } from "../platform/cachedFor.ts";
import type { Logger } from "../platform/logger.ts";
import { BREED_NAME } from "../lifecycle/validation.ts";

export type BreedList = Record<string, string[]>;

export interface BreedOption {
  value: string; // "hound" or "hound/afghan", as the form posts it
  label: string; // "hound" or "hound (afghan)"
}

/**
 * dog.ceo lists ~200 breeds and sub-breeds; each is ~220 bytes of the home page. A list with
 * more options than this is not taken (the one there was, or the snapshot, stays): 25,000
 * breeds fit under the 1 MiB answer cap and made the home page 5.5 MB, cached for an hour.
 */
export const MAX_BREED_OPTIONS = 1000;

export class BreedListTooLongError extends Error {}

export class BreedCatalog {
  readonly options: BreedOption[];
  readonly breeds: BreedList;

  /** Names a task could not be submitted with (not BREED_NAME) are left out. */
  constructor(list: BreedList) {
    const breeds: BreedList = {};
    let options = 0;
    for (const [breed, subs] of Object.entries(list)) {
      if (!BREED_NAME.test(breed)) continue;
      breeds[breed] = subs.filter((sub) => BREED_NAME.test(sub));
      options += 1 + breeds[breed].length;
      if (options > MAX_BREED_OPTIONS)
        throw new BreedListTooLongError(`the breed list has more than ${MAX_BREED_OPTIONS} breeds and sub-breeds`);
    }
    this.breeds = breeds;
    this.options = Object.keys(breeds)
      .sort()
      .flatMap((breed) => [
        { value: breed, label: breed },
        ...[...(breeds[breed] ?? [])]
          .sort()
          .map((sub) => ({ value: `${breed}/${sub}`, label: breedLabel(breed, sub) })),
      ]);
  }

  has(breed: string, subBreed?: string): boolean {
    const subs = Object.hasOwn(this.breeds, breed) ? this.breeds[breed] : undefined;
    if (!subs) return false;
    return subBreed === undefined || subs.includes(subBreed);
  }
}

export function breedLabel(breed: string, subBreed?: string | null): string {
  return subBreed ? `${breed} (${subBreed})` : breed;
}

export interface BreedSource {
  listBreeds(): Promise<BreedList>;
}

export interface BreedCatalogCache {
  get(): Promise<BreedCatalog>;
}

const HOUR_MS = 60 * 60 * 1000;
/** After dog.ceo failed, it is asked again this much later, not on every request. */
const RETRY_MS = 60_000;

export function cachedBreedCatalog(source: BreedSource, logger: Logger, ttlMs = HOUR_MS): BreedCatalogCache {
  let last: BreedCatalog | undefined;
  let fallbackLogged = false;

  async function fetchList(): Promise<{ catalog: BreedCatalog; fallback: boolean }> {
    try {
      last = new BreedCatalog(await source.listBreeds());
      fallbackLogged = false;
      return { catalog: last, fallback: false };
    } catch (err) {
      if (!fallbackLogged) {
        logger.warn({ err }, "dog.ceo breed list unavailable; using the bundled snapshot");
        fallbackLogged = true;
      }
      // A list fetched before is kept over the snapshot.
      last ??= new BreedCatalog(snapshot as BreedList);
      return { catalog: last, fallback: true };
    }
  }

  // A stale list is still good, however old, while a fresh one is fetched.
  const times = { ttlMs: (answer: { fallback: boolean }) => (answer.fallback ? RETRY_MS : ttlMs), staleMs: Infinity };
  const cached = cachedFor<void, { catalog: BreedCatalog; fallback: boolean }>(times, fetchList);
  return { get: async () => (await cached()).catalog };
}

// What a task request must look like, shared by the HTML form and the JSON API.
import type { BreedCatalog } from "../dogs/breeds.ts";
import { ValidationError } from "../platform/errors.ts";

export const MIN_LIMIT = 1;
export const MAX_LIMIT = 50;

export interface TaskInput {
  breed: string;
  subBreed?: string;
  limit: number;
}

/**
 * The form posts strings (`breed` may be "hound/afghan"); the API posts JSON where
 * `limit` must be a number. Either way the breed must be one dog.ceo knows.
 */
export function parseTaskInput(raw: unknown, catalog: BreedCatalog, from: "form" | "json"): TaskInput {
  const body = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const errors: Record<string, string> = {};

  const breedPath = parseBreed(body.breed, body.subBreed);
  if (typeof breedPath === "string") errors.breed = breedPath;
  else if (!catalog.has(breedPath.breed, breedPath.subBreed)) {
    errors.breed = breedPath.subBreed
      ? `dog.ceo has no sub-breed "${breedPath.subBreed}" of "${breedPath.breed}".`
      : `dog.ceo has no breed "${breedPath.breed}".`;
  }

  const limit = parseLimit(body.limit, from);
  if (typeof limit === "string") errors.limit = limit;

  if (Object.keys(errors).length > 0 || typeof breedPath === "string" || typeof limit === "string") {
    throw new ValidationError(errors);
  }
  return { breed: breedPath.breed, ...(breedPath.subBreed ? { subBreed: breedPath.subBreed } : {}), limit };
}

/** A dog.ceo breed or sub-breed name, as it appears in paths and job messages. */
export const BREED_NAME = /^[a-z]{1,40}$/;

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

function parseBreed(breed: unknown, subBreed: unknown): { breed: string; subBreed?: string } | string {
  if (breed === undefined || breed === null || breed === "") return "Pick a breed.";
  if (typeof breed !== "string") return "The breed must be text.";
  if (subBreed !== undefined && subBreed !== null && subBreed !== "" && typeof subBreed !== "string") {
    return "The sub-breed must be text.";
  }
  const parts = breed.trim().toLowerCase().split("/");
  if (typeof subBreed === "string" && subBreed !== "") {
    if (parts.length !== 1) return "Give the sub-breed either in the breed or on its own, not both.";
    parts.push(subBreed.trim().toLowerCase());
  }
  if (parts.length > 2 || !parts.every((p) => BREED_NAME.test(p))) {
    return 'A breed is lower-case letters only, like "hound" or "hound/afghan".';
  }
  return parts[1] ? { breed: parts[0]!, subBreed: parts[1] } : { breed: parts[0]! };
}

function parseLimit(limit: unknown, from: "form" | "json"): number | string {
  const range = `The limit must be a whole number from ${MIN_LIMIT} to ${MAX_LIMIT}.`;
  if (limit === undefined || limit === null || limit === "")
    return `Give a limit: a whole number from ${MIN_LIMIT} to ${MAX_LIMIT}.`;
  const wellFormed =
    from === "json" ? typeof limit === "number" : typeof limit === "string" && /^\s*\d{1,3}\s*$/.test(limit);
  if (!wellFormed) return range;
  const value = Number(limit);
  if (!Number.isInteger(value) || value < MIN_LIMIT || value > MAX_LIMIT) return range;
  return value;
}

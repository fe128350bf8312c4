// The job message: plain JSON, validated on receipt because anything can arrive on a queue.
export interface JobMessage {
  taskId: string;
  breed: string;
  subBreed?: string;
  limit: number;
}

export class InvalidMessageError extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME = /^[a-z]{1,40}$/;

export function encodeJob(job: JobMessage): Buffer {
  return Buffer.from(JSON.stringify(job));
}

export function parseJobMessage(content: Buffer | string): JobMessage {
  let data: unknown;
  try {
    data = JSON.parse(content.toString());
  } catch {
    throw new InvalidMessageError("the message is not JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new InvalidMessageError("the message is not a JSON object");
  const { taskId, breed, subBreed, limit } = data as Record<string, unknown>;
  if (typeof taskId !== "string" || !UUID.test(taskId)) throw new InvalidMessageError("taskId is not a uuid");
  if (typeof breed !== "string" || !NAME.test(breed)) throw new InvalidMessageError("breed is not a breed name");
  if (subBreed !== undefined && (typeof subBreed !== "string" || !NAME.test(subBreed))) throw new InvalidMessageError("subBreed is not a sub-breed name");
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 50) throw new InvalidMessageError("limit is not a whole number from 1 to 50");
  return { taskId, breed, ...(subBreed ? { subBreed } : {}), limit };
}

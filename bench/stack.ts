// The app under test as child processes: the dog.ceo stand-in, and one web (plus one
// worker, if asked) on their own database file and queue name, started as production
// starts them. Whoever starts them passes `children` and `queues` to cleanUp().
import { randomBytes } from "node:crypto";
import {
  AMQP_URL,
  consumers,
  deleteQueues,
  entryMode,
  freePort,
  httpOk,
  startChild,
  waitUntil,
  type Child,
} from "./processes.ts";

/** Stops every child at once and removes the run's broker objects, whatever happened. */
export async function cleanUp(children: Child[], queues: string[]): Promise<void> {
  await Promise.all(children.map((child) => child.stop()));
  for (const queue of queues) await deleteQueues(queue).catch(() => {});
}

export async function startDogApi(children: Child[], latencyMs: number): Promise<string> {
  const port = await freePort();
  const child = startChild("dog.ceo", ["--import", "tsx", "dev/fake-dog-api.ts"], {
    PORT: String(port),
    HOST: "127.0.0.1",
    FAKE_DOG_LATENCY_MS: String(latencyMs),
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}/api`;
  await waitUntil("the dog.ceo stand-in", httpOk(`${url}/breeds/list`), 30_000, child);
  return url;
}

/** One web (and a worker, if asked) on their own database file and queue name. */
export async function startApp(
  children: Child[],
  queues: string[],
  dbFile: string,
  dogApiUrl: string,
  withWorker: boolean,
  extraEnv: Record<string, string> = {},
) {
  const port = await freePort();
  const queue = `gendog.bench.${randomBytes(4).toString("hex")}`;
  queues.push(queue);
  const env = {
    DATABASE_URL: `file:${dbFile}`,
    AMQP_URL,
    QUEUE_NAME: queue,
    DOG_API_URL: dogApiUrl,
    // The stand-in is ours to load: no politeness ceiling (dog.ceo itself gets DOG_API_MAX_RPS's default).
    DOG_API_MAX_RPS: "0",
    RATE_LIMIT_PER_MINUTE: "0",
    LOG_LEVEL: "warn",
    PORT: String(port),
    NODE_ENV: "production",
    SECURE_COOKIES: "false",
    CSRF_SECRET: randomBytes(24).toString("hex"),
    ...extraEnv,
  };
  const entry = entryMode();
  const web = startChild("web", entry.web, env);
  children.push(web);
  const worker = withWorker ? startChild("worker", entry.worker, env) : undefined;
  if (worker) children.push(worker);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil("the web to be ready", httpOk(`${url}/readyz`), 60_000, web);
  if (worker) await waitUntil("the worker to consume", async () => (await consumers(queue)) > 0, 60_000, worker);
  return { url, web, worker, queue, env };
}

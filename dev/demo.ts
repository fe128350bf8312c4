// `npm run demo`: the whole app offline. Starts the dog.ceo stand-in, then the web and
// the worker (as `npm start` does) with DOG_API_URL pointed at the stand-in.
// Ctrl-C stops all three; a web or worker that dies is started again (scripts/supervise.ts).
// FAKE_DOG_FAULTS="http500=0.3,slow=0.2" makes the stand-in misbehave at random, to watch
// retries (and, with http500=1, a task that gives up).
import { randomBytes } from "node:crypto";
import { supervise } from "../scripts/supervise.ts";
import { faultRatesFromEnv, startFakeDogApi, type FakeDogApi } from "./fake-dog-api.ts";

const wanted = Number(process.env.FAKE_DOG_API_PORT ?? 8090);
let fake: FakeDogApi;
try {
  fake = await startFakeDogApi({ port: wanted });
} catch {
  fake = await startFakeDogApi({ port: 0 }); // the usual port is taken: any free one will do
}
const faults = faultRatesFromEnv(process.env.FAKE_DOG_FAULTS);
if (Object.keys(faults).length > 0) fake.setFaultRate(faults, Date.now());
console.log(
  `[dog.ceo] stand-in answering at ${fake.url}${process.env.FAKE_DOG_FAULTS ? ` with random faults: ${process.env.FAKE_DOG_FAULTS}` : ""}`,
);

// The web and the worker share a key for the monitor's pause and resume, made for this run
// (kept if one is set): pausing works in the demo with no password to set up.
const controlSecret = process.env.CONTROL_SECRET || randomBytes(32).toString("hex");
const env = { DOG_API_URL: fake.url, LOG_FORMAT: process.env.LOG_FORMAT ?? "pretty", CONTROL_SECRET: controlSecret };
const { result } = supervise([
  { command: "npm run --silent web", name: "web", env },
  { command: "npm run --silent worker", name: "worker", env },
]);

result.then(
  async () => {
    await fake.close();
    process.exit(0);
  },
  async () => {
    await fake.close();
    process.exit(1);
  },
);

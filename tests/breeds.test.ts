// The breed list: dog.ceo's, cached for an hour, with the bundled snapshot as a fallback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import { cachedBreedCatalog, type BreedList } from "../lib/dogs/breeds.ts";

function recordingLogger() {
  const lines: string[] = [];
  const logger = pino(
    { level: "warn" },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  return { logger, lines };
}

test("when dog.ceo answers, the form offers its breeds and sub-breeds readably, and asks again only after the hour", async () => {
  let calls = 0;
  const list: BreedList = { hound: ["afghan", "basset"], pug: [] };
  const { logger } = recordingLogger();
  let now = 0;
  const catalog = cachedBreedCatalog({ listBreeds: async () => (calls++, list) }, logger, 1000);
  const realNow = Date.now;
  Date.now = () => now;
  try {
    const first = await catalog.get();
    assert.deepEqual(first.options, [
      { value: "hound", label: "hound" },
      { value: "hound/afghan", label: "hound (afghan)" },
      { value: "hound/basset", label: "hound (basset)" },
      { value: "pug", label: "pug" },
    ]);
    assert.ok(
      first.has("hound", "afghan") && first.has("pug") && !first.has("pug", "afghan") && !first.has("constructor"),
    );
    now = 999;
    await catalog.get();
    assert.equal(calls, 1, "cached within the hour");
    now = 1001;
    await catalog.get();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls, 2, "refreshed after it");
  } finally {
    Date.now = realNow;
  }
});

test("when dog.ceo cannot be reached, the bundled snapshot is offered and the problem is logged once", async () => {
  const { logger, lines } = recordingLogger();
  const catalog = cachedBreedCatalog(
    {
      listBreeds: async () => {
        throw new Error("connect ECONNREFUSED");
      },
    },
    logger,
    0,
  );
  const first = await catalog.get();
  assert.ok(first.has("hound", "afghan"), "the snapshot knows hound (afghan)");
  assert.ok(Object.keys(first.breeds).length > 100);
  await catalog.get();
  await catalog.get();
  assert.equal(lines.length, 1, "logged once, not per request");
  assert.match(lines[0]!, /bundled snapshot/);
});

test("when dog.ceo sends 25,000 breeds, the form keeps a list of ordinary size, says why once, and asks again within minutes, not after the hour", async () => {
  const { logger, lines } = recordingLogger();
  const huge: BreedList = Object.fromEntries(
    Array.from({ length: 25_000 }, (_, i) => [
      `breed${i.toString(26).replace(/\d/g, (d) => "qrstuvwxyz"[Number(d)]!)}`,
      [],
    ]),
  );
  assert.ok(JSON.stringify({ message: huge, status: "success" }).length < 1024 * 1024, "under the answer cap");
  let calls = 0;
  let now = 0;
  const catalog = cachedBreedCatalog({ listBreeds: async () => (calls++, huge) }, logger, 60 * 60_000);
  const realNow = Date.now;
  Date.now = () => now;
  try {
    const offered = await catalog.get();
    assert.ok(offered.options.length < 1000, `${offered.options.length} options`);
    assert.ok(offered.has("hound", "afghan"), "the bundled snapshot");
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /more than 1000 breeds/);
    now = 61_000;
    await catalog.get();
    assert.equal(calls, 2, "asked again after a minute");
  } finally {
    Date.now = realNow;
  }
});

test("when dog.ceo's list holds names no task could be submitted with, the form does not offer them", async () => {
  const { logger } = recordingLogger();
  const catalog = cachedBreedCatalog(
    { listBreeds: async () => ({ hound: ["afghan", "Not A Name"], "<script>": [], pug: [] }) },
    logger,
  );
  assert.deepEqual(
    (await catalog.get()).options.map((o) => o.value),
    ["hound", "hound/afghan", "pug"],
  );
});

// The gallery's numbered pages on a real database: the total kept by triggers stays
// exact through duplicates and clearing, and pages read from either end show every photo
// once, newest first; the plain reads of pages agree with Prisma's.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { openMigratedDatabase, type Db } from "../lib/store/db.ts";
import { clearPhotos, galleryPage, pageLinks, PHOTOS_PER_PAGE } from "../lib/useCases/gallery.ts";
import { createLifecycle, type Lifecycle } from "../lib/lifecycle/lifecycle.ts";
import { listTasks } from "../lib/useCases/taskSearch.ts";
import { openStore, type TaskStore } from "../lib/store/index.ts";
import { queriesOver } from "../lib/store/queries/index.ts";
import { freshDatabase, type TestDatabase } from "./support/database.ts";

let database: TestDatabase;
let db: Db;
let store: TaskStore;
let lifecycle: Lifecycle;

before(async () => {
  database = await freshDatabase();
  const url = database.url;
  db = await openMigratedDatabase(url);
  store = await openStore(url);
  lifecycle = createLifecycle(store, { emit() {} });
});

after(async () => {
  await db.$disconnect();
  await store.close();
  await database.drop();
});

/** A task that ran and stored these links, as a worker would. */
async function taskWithPhotos(urls: string[]) {
  const id = randomUUID();
  await lifecycle.accept({ id, breed: "pug", subBreed: null, limit: urls.length }, "{}", 0);
  const claim = await lifecycle.claim({ taskId: id, attempt: 1, redelivered: false, workerId: "w" });
  assert.equal(claim.kind, "run");
  if (claim.kind === "run") await lifecycle.succeed({ ...claim, breed: "pug", subBreed: null }, urls);
}

const link = (i: number) => `https://images.dog.ceo/breeds/pug/${i}.jpg`;

describe("the gallery's pages", () => {
  test("when tasks store photos, some of them already stored, the total counts each photo once", async () => {
    await taskWithPhotos(Array.from({ length: 50 }, (_, i) => link(i)));
    await taskWithPhotos(Array.from({ length: 50 }, (_, i) => link(i + 25))); // 25 seen before
    await taskWithPhotos(Array.from({ length: 50 }, (_, i) => link(i + 75)));
    assert.equal(await db.photo.count(), 125);
    assert.equal((await galleryPage(queriesOver(db, store).photos, 1)).total, 125);
  });

  test("when every page is read, each photo appears once, newest first, whichever end a page is read from", async () => {
    const first = await galleryPage(queriesOver(db, store).photos, 1);
    assert.equal(first.pages, Math.ceil(125 / PHOTOS_PER_PAGE));
    const seen = [];
    for (let page = 1; page <= first.pages; page++)
      seen.push(...(await galleryPage(queriesOver(db, store).photos, page)).photos.map((p) => p.id));
    const newestFirst = (await db.photo.findMany({ orderBy: { id: "desc" }, select: { id: true } })).map((p) => p.id);
    assert.deepEqual(seen, newestFirst);
    assert.deepEqual(
      (await galleryPage(queriesOver(db, store).photos, first.pages + 1)).photos,
      [],
      "a page past the end is empty",
    );
  });

  test("when the newest tasks are listed unfiltered, the store's prepared read gives what Prisma's query gives for the same tasks", async () => {
    await taskWithPhotos([link(200)]);
    const { search } = queriesOver(db, store);
    const plain = await listTasks(search, { limit: 3 });
    // Every task here is a pug: the same tasks, through the query builder.
    const searched = await listTasks(search, { limit: 3, breed: "pug" });
    assert.deepEqual(plain.tasks, searched.tasks);
    assert.deepEqual(
      plain.tasks.map((t) => t.photosInGallery),
      [1, 50, 50],
    );
    assert.deepEqual([plain.nextCursor, plain.prevCursor], [searched.nextCursor, searched.prevCursor]);
  });

  test("when the gallery is cleared, the total is zero again", async () => {
    await clearPhotos({ data: queriesOver(db, store), events: { emit() {} } });
    const page = await galleryPage(queriesOver(db, store).photos, 1);
    assert.equal(page.total, 0);
    assert.deepEqual(page.photos, []);
  });

  test("page links show the first, the last and two either side, with gaps marked", () => {
    assert.deepEqual(pageLinks(1, 1), [1]);
    assert.deepEqual(pageLinks(1, 10), [1, 2, 3, 0, 10]);
    assert.deepEqual(pageLinks(5, 10), [1, 0, 3, 4, 5, 6, 7, 0, 10]);
    assert.deepEqual(pageLinks(4, 10), [1, 2, 3, 4, 5, 6, 0, 10]);
    assert.deepEqual(pageLinks(2084, 2084), [1, 0, 2082, 2083, 2084]);
  });
});

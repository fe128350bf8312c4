// The pipeline's store (lib/store/) on a fresh database of its own, for tests that drive the
// lifecycle or a job handler directly: no broker, no web, no worker.
import { openStore, type TaskStore } from "../../lib/store/index.ts";
import { freshDatabase } from "./database.ts";

/** A store whose drop() closes it and drops its database. */
export type TestStore = TaskStore & { drop(): Promise<void> };

/** The database comes migrated (a copy of the template), so nothing is migrated here. */
export async function freshStore(): Promise<TestStore> {
  const database = await freshDatabase();
  const store = await openStore(database.url);
  return Object.assign(store, {
    async drop() {
      await store.close();
      await database.drop();
    },
  });
}

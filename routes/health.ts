// /healthz: the process answers. /readyz: it can do its job (database and broker reachable).
import { Router } from "express";
import type { AppDeps } from "../lib/appDeps.ts";

export function healthRoutes(deps: AppDeps) {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    // A silent database is a down one: no answer within the time limit is "not ready", at once.
    let timer: NodeJS.Timeout | undefined;
    const database = await Promise.race([
      deps.data.ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, deps.config.databaseTimeoutMs, false))),
    ]);
    clearTimeout(timer);
    const broker = deps.queue.isConnected();
    const down = [...(database ? [] : ["database"]), ...(broker ? [] : ["broker"])];
    if (down.length) res.set("Retry-After", "5");
    res
      .status(down.length ? 503 : 200)
      .json({ status: down.length ? "unavailable" : "ready", database, broker, ...(down.length ? { down } : {}) });
  });
  return router;
}

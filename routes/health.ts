// /healthz: the process answers. /readyz: it can do its job (database and broker reachable).
import { Router } from "express";
import type { AppDeps } from "../lib/appDeps.ts";

export function healthRoutes(deps: AppDeps) {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const database = await deps.db.$queryRawUnsafe("SELECT 1").then(
      () => true,
      () => false,
    );
    const broker = deps.queue.isConnected();
    const down = [...(database ? [] : ["database"]), ...(broker ? [] : ["broker"])];
    res.status(down.length ? 503 : 200).json({ status: down.length ? "unavailable" : "ready", database, broker, ...(down.length ? { down } : {}) });
  });
  return router;
}

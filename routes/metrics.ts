// GET /metrics: this web's Prometheus metrics (lib/platform/metrics.ts). Read-only numbers, no
// task contents; put it behind your own network rules if even those are private.
import { Router } from "express";
import type { Registry } from "prom-client";

export function metricsRoutes(registry: Registry) {
  const router = Router();
  router.get("/metrics", async (_req, res) => {
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  });
  return router;
}

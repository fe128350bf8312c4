// Bulma from node_modules and our own CSS and script, cacheable; everything after them is
// made for one request (pages carry a CSRF token and set cookies, the API and the streams
// are live), so no cache may store it.
import path from "node:path";
import express, { Router } from "express";
import type { AppDeps } from "../../lib/appDeps.ts";
import { projectRoot } from "../../lib/config.ts";

export function setUpStaticFiles(config: AppDeps["config"]) {
  const router = Router();
  router.use("/static/bulma", express.static(path.join(projectRoot, "node_modules", "bulma", "css"), { maxAge: "7d" }));
  router.use("/static", express.static(path.join(projectRoot, "static"), { maxAge: config.env === "production" ? "1h" : 0 }));
  router.use((_req, res, next) => {
    res.set("Cache-Control", "no-store");
    next();
  });
  return router;
}

// Bulma from node_modules and our own CSS and script, kept for a year (pages link them with
// a fingerprint of their content: routes/setup/assets.ts); everything after them is made
// for one request (pages carry a CSRF token and set cookies, the API and the streams are
// live), so no cache may store it.
import path from "node:path";
import express, { Router } from "express";
import { projectRoot } from "../../lib/platform/config.ts";

const KEEP = { maxAge: "365d", immutable: true };

export function setUpStaticFiles() {
  const router = Router();
  router.use("/static/bulma", express.static(path.join(projectRoot, "node_modules", "bulma", "css"), KEEP));
  router.use("/static", express.static(path.join(projectRoot, "static"), KEEP));
  router.use((_req, res, next) => {
    res.set("Cache-Control", "no-store");
    next();
  });
  return router;
}

// Nunjucks, configured in one place: autoescape always, templates cached outside
// development, and the filters the templates use.
import path from "node:path";
import type express from "express";
import nunjucks from "nunjucks";
import { projectRoot } from "../../lib/platform/config.ts";
import { assetUrl } from "./assets.ts";

export function setUpViews(app: express.Express, cache: boolean): void {
  const env = nunjucks.configure(path.join(projectRoot, "views"), { autoescape: true, express: app, noCache: !cache });
  env.addFilter("datetime", (iso: string | null) => (iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "—"));
  env.addGlobal("asset", (publicPath: string) => assetUrl(publicPath, cache));
  env.addFilter("duration", (ms: number | null) => formatDuration(ms));
  // A job message as a person reads it: indented JSON, or the text as it came if it is not JSON.
  env.addFilter("prettyJson", (text: string) => {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  });
  // "n02088094_1003" from ".../hound-afghan/n02088094_1003.jpg": tells photos of one breed apart.
  env.addFilter(
    "photoName",
    (url: string) =>
      decodeURIComponent(url.split(/[?#]/)[0]!.split("/").pop() ?? "").replace(/\.[a-z0-9]+$/i, "") || "?",
  );
  app.set("view engine", "njk");
}

function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

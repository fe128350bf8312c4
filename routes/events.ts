// Server-Sent Events: task states and new photos as they happen. A browser that
// reconnects sends Last-Event-ID and gets what it missed, or a fresh snapshot.
import { Router, type Response } from "express";
import type { AppDeps } from "../app.ts";
import type { NumberedEvent } from "../lib/eventHub.ts";
import { listTasks } from "../lib/tasks.ts";

const KEEPALIVE_MS = 15_000;

export function eventRoutes(deps: AppDeps) {
  const router = Router();
  const open = new Set<Response>();

  router.get("/events", async (req, res) => {
    const hub = deps.hub;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.write("retry: 2000\n\n");
    const send = ({ id, event }: NumberedEvent) => res.write(`id: ${hub.epoch}-${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);

    // Subscribe first so nothing slips between the replay (or snapshot) and live events;
    // and clean up on close from the start, even if the browser leaves mid-snapshot.
    const buffered: NumberedEvent[] = [];
    let live = false;
    const unsubscribe = hub.subscribe((event) => (live ? send(event) : buffered.push(event)));
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
    open.add(res);
    res.on("close", () => {
      clearInterval(keepalive);
      unsubscribe();
      open.delete(res);
    });

    try {
      // The first watcher starts this web hearing other processes' events: wait for that,
      // so nothing slips between the snapshot and them.
      await hub.whenLive();
      const [epoch, last] = String(req.headers["last-event-id"] ?? req.query.lastEventId ?? "").split("-");
      const missed = epoch === hub.epoch && /^\d+$/.test(last ?? "") ? hub.since(Number(last)) : undefined;
      let upTo: number;
      if (missed) {
        missed.forEach(send);
        upTo = missed.at(-1)?.id ?? Number(last);
      } else {
        upTo = hub.lastId;
        const { tasks } = await listTasks(deps.db, { limit: 20 });
        res.write(`id: ${hub.epoch}-${upTo}\nevent: snapshot\ndata: ${JSON.stringify({ type: "snapshot", tasks })}\n\n`);
      }
      buffered.filter((e) => e.id > upTo).forEach(send);
      live = true;
    } catch (err) {
      // The browser reconnects (and asks again) after the stream ends.
      deps.logger.warn({ err: (err as Error).message }, "could not start an event stream");
      res.end();
    }
  });

  return Object.assign(router, {
    /** Ends every open stream, so a shutting-down server is not held open by browsers. */
    closeAll() {
      for (const res of open) res.end();
    },
  });
}

// Server-Sent Events: task states and new photos as they happen. A browser that
// reconnects sends Last-Event-ID and gets what it missed, or a fresh snapshot. Streams
// are capped in all and per client (lib/live/streamQuota.ts), end after a while so none is
// held for ever, and a reader too slow to take what is sent is cut off.
import { Router, type Request, type Response } from "express";
import type { AppDeps } from "../lib/appDeps.ts";
import type { NumberedEvent } from "../lib/live/eventHub.ts";
import { StreamQuota, type Admission } from "../lib/live/streamQuota.ts";
import { listTasks } from "../lib/useCases/taskSearch.ts";

const KEEPALIVE_MS = 15_000;
/** Unsent bytes a stream may hold before its reader counts as gone: a few hundred events. */
const MAX_BUFFERED_BYTES = 256 * 1024;

export function eventRoutes(deps: AppDeps) {
  const router = Router();
  const open = new Set<Response>();
  const quota = new StreamQuota(deps.config.streams);
  const clientOf = (req: Request) => req.ip ?? req.socket.remoteAddress ?? "unknown";

  // A browser whose stream was refused asks here when it may open one again.
  router.head("/events", (req, res) => {
    const verdict = quota.check(clientOf(req));
    if (!verdict.ok) return void refuse(res, verdict);
    res.set("Cache-Control", "no-store").status(204).end();
  });

  router.get("/events", async (req, res) => {
    const hub = deps.hub;
    const admission = quota.admit(clientOf(req));
    if (!admission.ok) return void refuse(res, admission);
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    const write = (chunk: string) => {
      if (res.writableLength > MAX_BUFFERED_BYTES)
        res.destroy(); // it never reads: let it reconnect when it does
      else res.write(chunk);
    };
    write("retry: 2000\n\n");
    const send = (numbered: NumberedEvent) => write(frameOf(numbered, hub.epoch));

    // Subscribe first so nothing slips between the replay (or snapshot) and live events;
    // and clean up on close from the start, even if the browser leaves mid-snapshot.
    const buffered: NumberedEvent[] = [];
    let live = false;
    const unsubscribe = hub.subscribe((event) => (live ? send(event) : buffered.push(event)));
    const keepalive = setInterval(() => write(": keepalive\n\n"), KEEPALIVE_MS);
    // Ended after its age (±10%, so streams opened together do not all end together); the
    // browser reconnects with Last-Event-ID and misses nothing.
    const ageLimit = setTimeout(() => res.end(), deps.config.streams.maxAgeMs * (0.9 + Math.random() * 0.2));
    open.add(res);
    res.on("close", () => {
      clearInterval(keepalive);
      clearTimeout(ageLimit);
      unsubscribe();
      open.delete(res);
      admission.release();
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
        const { tasks } = await listTasks(deps.data.search, { limit: 20 }, "none");
        write(`id: ${hub.epoch}-${upTo}\nevent: snapshot\ndata: ${JSON.stringify({ type: "snapshot", tasks })}\n\n`);
      }
      buffered.filter((e) => e.id > upTo).forEach(send);
      live = true;
    } catch (err) {
      // The browser reconnects (and asks again) after the stream ends.
      req.log.warn({ err }, "could not start an event stream");
      res.end();
    }
  });

  return Object.assign(router, {
    /** Streams open now. */
    openStreams: () => quota.open,
    /** Ends every open stream, so a shutting-down server is not held open by browsers. */
    closeAll() {
      for (const res of open) res.end();
    },
  });
}

// Every open stream sends the same event: it is turned into text once, not once a stream
// (with 200 pages open that was most of the web's CPU).
const frames = new WeakMap<NumberedEvent, { epoch: string; text: string }>();
function frameOf(numbered: NumberedEvent, epoch: string): string {
  const cached = frames.get(numbered);
  if (cached?.epoch === epoch) return cached.text;
  const text = `id: ${epoch}-${numbered.id}\nevent: ${numbered.event.type}\ndata: ${numbered.data}\n\n`;
  frames.set(numbered, { epoch, text });
  return text;
}

/** Refused with the status that says whose limit it is and when to come back. */
function refuse(res: Response, verdict: Extract<Admission, { ok: false }>) {
  res
    .status(verdict.status)
    .set({ "Retry-After": String(verdict.retryAfterSeconds), "Cache-Control": "no-store" })
    .json({
      error: {
        code: verdict.status === 429 ? "too_many_streams" : "busy",
        message: `No live stream now: ${verdict.reason}. Try again in ${verdict.retryAfterSeconds} s.`,
      },
    });
}

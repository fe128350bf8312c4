// Brings other processes' events into this web's hub. Worker heartbeats always (the
// monitor's workers panel and queue numbers need them). Task events only while a browser
// watches: every job makes several, and each one heard costs the broker and this process,
// for nothing when no page is open. The first watcher waits until they are heard; the
// last one leaving stops them a little later, and the hub then starts a new epoch, since
// it missed what came meanwhile.
import type { EventHub } from "./eventHub.ts";
import { dropLog } from "../platform/dropLog.ts";
import { parseAppEvent } from "./eventCheck.ts";
import type { EventSink } from "./events.ts";
import type { Logger } from "../platform/logger.ts";
import { heartbeatSigned } from "../monitor/signedHeartbeats.ts";
import { MAX_HEARTBEAT_BYTES, parseHeartbeat, type WorkerRegistry } from "../monitor/workerRegistry.ts";

type Unsubscribe = { close(): Promise<void> };

export interface EventSource {
  /** Events over maxBytes (or a default) are dropped unread. */
  subscribeEvents(
    pattern: string,
    listener: (routingKey: string, payload: unknown) => void,
    maxBytes?: number,
  ): Promise<Unsubscribe>;
  publishEvent(routingKey: string, payload: unknown): void;
}

export interface EventPublisher {
  publishEvent(routingKey: string, payload: unknown): void;
  onConnected(listener: () => void): void;
  /** False for a while after a task event of this process found no listener. */
  readonly taskEventsHeard: boolean;
}

const LINGER_MS = 30_000;
/**
 * Workers make no task events for a while after one found no listener (lib/live/events.ts). When
 * this web starts hearing them it says so on the exchange, and the first watcher waits this
 * long more, so the page it renders next is read after the workers heard it.
 */
const ANNOUNCE_SETTLE_MS = 25;

/**
 * The web's own events: straight to its browsers and, through the exchange, to the other
 * webs (the queue layer keeps them from coming back here). After a reconnect the open
 * pages are told to reload what they show: events published meanwhile are gone.
 */
export function webEvents(hub: EventHub, broker: EventPublisher): EventSink {
  let connectedBefore = false;
  broker.onConnected(() => {
    if (connectedBefore) hub.publish({ type: "resync" });
    connectedBefore = true;
  });
  return {
    emit(event, scope) {
      hub.publish(event);
      if (scope !== "local" && broker.taskEventsHeard) broker.publishEvent(`task.${event.type}`, event);
    },
    // This web's own pages (or a page about to connect, which holds the hub), or another web's.
    wanted: (scope) => hub.watched || (scope !== "local" && broker.taskEventsHeard),
  };
}

/** `key`: the control key web and workers share; with one, only heartbeats signed with it are taken. */
export async function relayEvents(
  deps: { broker: EventSource; hub: EventHub; workers: WorkerRegistry; logger: Logger; key?: Buffer },
  lingerMs = LINGER_MS,
) {
  const { broker, hub, workers, logger, key } = deps;
  // Forged or broken: never shown, never counted, logged (a few lines at most).
  const badHeartbeat = dropLog(logger, "dropped a heartbeat that is not one");
  const badTaskEvent = dropLog(logger, "dropped a task event that is not one");
  const tooOften = dropLog(logger, "dropped heartbeats that came faster than a worker beats");
  const noRoom = dropLog(logger, "dropped a heartbeat from a new worker id: every worker tracked is alive");
  const unsigned = dropLog(logger, "dropped a heartbeat not signed with this web's control key, or not lately");
  const heartbeats = await broker.subscribeEvents(
    "worker.*",
    (routingKey, payload) => {
      if (routingKey !== "worker.heartbeat" && routingKey !== "worker.offline") return;
      const beat = parseHeartbeat(payload);
      if (!beat) return badHeartbeat({ routingKey });
      if (key && !heartbeatSigned(key, routingKey, beat, payload)) return unsigned({ routingKey, worker: beat.id });
      const verdict = routingKey === "worker.heartbeat" ? workers.heartbeat(beat) : workers.offline(beat);
      if (verdict === "too often") tooOften({ worker: beat.id });
      else if (verdict === "full") noRoom({ worker: beat.id });
    },
    MAX_HEARTBEAT_BYTES,
  );
  let tasks: Promise<Unsubscribe> | undefined;
  let linger: NodeJS.Timeout | undefined;

  hub.onAudience(async (watching) => {
    clearTimeout(linger);
    if (!watching) {
      linger = setTimeout(() => {
        const stopping = tasks;
        tasks = undefined;
        hub.restart();
        void stopping
          ?.then((s) => s.close())
          .catch((err) => logger.warn({ err }, "could not stop hearing task events"));
      }, lingerMs);
      linger.unref();
      return;
    }
    if (!tasks) {
      // Starting to hear after a time of not hearing: a page made meanwhile says it saw up to
      // an id after which events went unheard, so its first connect must take a snapshot.
      hub.restart();
      tasks = broker.subscribeEvents("task.*", (routingKey, payload) => {
        const event = parseAppEvent(payload);
        if (event) hub.publish(event);
        else badTaskEvent({ routingKey });
      });
      // Workers that found nobody listening make task events again as soon as they hear this.
      await tasks.then(
        () => broker.publishEvent("control.listening", {}),
        () => {},
      );
      await new Promise((resolve) => setTimeout(resolve, ANNOUNCE_SETTLE_MS));
    }
    await tasks;
  });

  return {
    async stop(): Promise<void> {
      clearTimeout(linger);
      await Promise.all([heartbeats.close(), tasks?.then((s) => s.close())]);
    },
  };
}

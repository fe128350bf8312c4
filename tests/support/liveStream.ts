// A page's live stream (GET /events) through a real EventSource (undici's): it reconnects
// with Last-Event-ID, as browsers do, and keeps what it heard for the test to read.
import { EventSource } from "undici";

const KiB = 1024;

/** Opens the stream at `url`; events of 128 KiB or more are counted but not parsed (data: null). */
export function listen(url: string) {
  const source = new EventSource(url);
  const page = {
    opens: 0,
    errors: 0,
    largest: 0,
    lastEventId: "",
    events: [] as { type: string; data: { task?: { id: string; state: string } } | null }[],
    close: () => source.close(),
  };
  source.onopen = () => (page.opens += 1);
  source.onerror = () => (page.errors += 1);
  for (const type of ["snapshot", "task", "photos", "photos-cleared", "resync"]) {
    source.addEventListener(type, (event) => {
      const text = String((event as MessageEvent).data);
      page.lastEventId = (event as MessageEvent).lastEventId;
      page.largest = Math.max(page.largest, text.length);
      page.events.push({ type, data: text.length < 128 * KiB ? JSON.parse(text) : null });
    });
  }
  return page;
}

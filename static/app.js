// GenDog's progressive enhancement. Every page works without it. With it, the live pages
// listen to /events and, when something changes, fetch their own URL again and swap in
// the fresh server-rendered regions. The templates stay the only source of markup; the
// only HTML parsed here is GenDog's own autoescaped page, from the same origin.
(() => {
  "use strict";

  // Regions replaced by id on each refresh; forms and #flash are left alone.
  const REGIONS = {
    home: ["recent-tasks", "gallery", "gallery-count", "gallery-pages"],
    tasks: ["tasks-list", "queue-panel", "workers-panel"],
    task: ["task-detail"],
  };
  const EVENTS = ["task", "photos", "photos-cleared", "snapshot", "resync"];
  const DEBOUNCE_MS = 250;
  const POLL_MS = 3000; // the queue numbers and workers on /tasks have no events
  const INDICATOR = {
    connecting: ["is-light", "connecting…"],
    live: ["is-success", "live"],
    reconnecting: ["is-warning", "reconnecting…"],
  };

  document.addEventListener("submit", (event) => {
    const message = event.target instanceof HTMLFormElement && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  const page = document.body.dataset.page;
  if (!REGIONS[page] || typeof window.EventSource !== "function") return;

  // Later gallery pages stay put while someone looks at them; only the task list follows.
  const laterPage = page === "home" && Number(new URLSearchParams(location.search).get("page")) > 1;
  const regions = laterPage ? ["recent-tasks"] : REGIONS[page];
  // A form that failed validation renders the home page at POST /tasks: follow "/" then.
  const url = page === "home" && location.pathname !== "/" ? "/" : location.href;

  // ---------------------------------------------------------------- fetch and swap

  let timer = null;
  let inFlight = false;
  let again = false;

  function schedule() {
    if (inFlight) again = true;
    else if (!timer) timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  async function refresh() {
    timer = null;
    inFlight = true;
    try {
      const res = await fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (res.ok) swap(new DOMParser().parseFromString(await res.text(), "text/html"));
    } catch {
      // Offline for a moment: the next event or poll tries again.
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function swap(fresh) {
    const shownBefore = new Set([...document.querySelectorAll("figure[data-photo-id]")].map((f) => f.dataset.photoId));
    for (const id of regions) {
      const current = document.getElementById(id);
      const incoming = fresh.getElementById(id);
      if (!current || !incoming || current.isEqualNode(incoming)) continue;
      const next = document.importNode(incoming, true);
      keepPhotos(current, next, shownBefore);
      current.replaceWith(next);
    }
  }

  /** Reuses figures whose image is unchanged (no reload, no flicker); fades in new ones. */
  function keepPhotos(current, next, shownBefore) {
    const old = new Map([...current.querySelectorAll("figure[data-photo-id]")].map((f) => [f.dataset.photoId, f]));
    for (const figure of next.querySelectorAll("figure[data-photo-id]")) {
      const kept = old.get(figure.dataset.photoId);
      if (kept && srcOf(kept) === srcOf(figure)) {
        kept.classList.remove("is-new"); // moving it would replay the fade
        figure.replaceWith(kept);
      } else if (!shownBefore.has(figure.dataset.photoId)) {
        figure.classList.add("is-new");
      }
    }
  }

  function srcOf(figure) {
    const img = figure.querySelector("img");
    return img ? img.getAttribute("src") : null;
  }

  // ---------------------------------------------------------------- live events

  function indicate(state) {
    const node = document.getElementById("live-indicator");
    if (!node) return;
    node.hidden = false;
    node.className = "tag " + INDICATOR[state][0];
    node.textContent = INDICATOR[state][1];
    node.dataset.state = state;
  }

  // The browser reconnects by itself; after a reconnect the server replays what was
  // missed or sends a snapshot, and either one triggers a refresh. Only when the browser
  // gives up (an error answer) do we open a new stream ourselves: when the server says
  // it may (a refused stream's Retry-After), or after a pause.
  let source = null;
  let retry = null;

  function connect() {
    clearTimeout(retry);
    if (source) source.close();
    indicate("connecting");
    source = new EventSource("/events");
    source.onopen = () => indicate("live");
    source.onerror = () => {
      indicate("reconnecting");
      if (source.readyState === EventSource.CLOSED) reconnectWhenAllowed();
    };
    for (const type of EVENTS) source.addEventListener(type, schedule);
  }

  function reconnectWhenAllowed() {
    fetch("/events", { method: "HEAD", cache: "no-store" })
      .then((res) => (res.ok ? 2 : Number(res.headers.get("Retry-After")) || 30))
      .catch(() => 5)
      .then((seconds) => {
        clearTimeout(retry);
        // Capped at 5 minutes, and spread a little so refused pages do not return at once.
        retry = setTimeout(connect, Math.min(seconds, 300) * 1000 * (1 + Math.random() * 0.2));
      });
  }

  connect();
  // Let the page into the back/forward cache, and pick up again when it comes back.
  window.addEventListener("pagehide", () => {
    clearTimeout(retry);
    if (source) source.close();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect();
  });

  if (page === "tasks") {
    setInterval(() => document.hidden || schedule(), POLL_MS);
    document.addEventListener("visibilitychange", () => document.hidden || schedule());
  }
})();

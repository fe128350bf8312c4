// GenDog's progressive enhancement. Every page works without it. With it, the live pages
// listen to /events and, when something changes, fetch their own URL again and swap in
// the fresh server-rendered regions. The templates stay the only source of markup; the
// only HTML parsed here is GenDog's own autoescaped page, from the same origin.
(() => {
  "use strict";

  // Regions replaced by id on each refresh; forms are left alone.
  const REGIONS = {
    home: ["worker-notice", "flash", "recent-tasks", "gallery", "gallery-count", "gallery-pages"],
    tasks: ["history", "tasks-list", "queue-panel", "failures", "workers-panel"],
    task: ["task-detail"],
    workers: ["workers-table"],
    "dead-letters": ["dead-letters-live"],
  };
  // The gallery and its numbers change together, and wait together while someone reads.
  const GALLERY = ["gallery", "gallery-count", "gallery-pages"];
  const EVENTS = {
    home: ["task", "photos", "photos-cleared", "snapshot", "resync", "monitor"],
    tasks: ["task", "snapshot", "resync", "monitor"],
    task: ["task", "photos", "photos-cleared", "snapshot", "resync", "monitor"],
    workers: ["monitor", "resync"],
    // The letters' count and their tasks' states change with the monitor's numbers.
    "dead-letters": ["monitor", "resync"],
  };
  const DEBOUNCE_MS = 250;
  const INDICATOR = {
    connecting: ["is-neutral", "connecting…"],
    live: ["is-success", "live"],
    reconnecting: ["is-warning", "reconnecting…"],
  };

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return event.preventDefault();
    // One press sends one task: the button shows it is busy until the next page.
    const button = form.querySelector("button[type=submit][data-busy]");
    if (!button) return;
    if (form.dataset.sending) return event.preventDefault();
    form.dataset.sending = "yes";
    button.classList.add("is-loading");
    button.setAttribute("aria-disabled", "true");
  });
  // The monitor's buttons post and come back with a notice beside the button (its panel's
  // #monitor-notice): the page returns to where the reader was, not to the anchor's top, and
  // the notice takes the focus the pressed button had.
  const PLACE = "gendog:place";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || form.method !== "post") return;
    try {
      sessionStorage.setItem(PLACE, JSON.stringify({ path: location.pathname, y: window.scrollY, at: Date.now() }));
    } catch {
      // No storage (private mode): the anchor still shows the notice.
    }
  });
  function backInPlace() {
    let place;
    try {
      place = JSON.parse(sessionStorage.getItem(PLACE) || "null");
      sessionStorage.removeItem(PLACE);
    } catch {
      return;
    }
    const notice = document.getElementById("monitor-notice");
    if (!notice || !place || place.path !== location.pathname || Date.now() - place.at > 60_000) return;
    history.replaceState(history.state, "", location.pathname + location.search);
    window.scrollTo(0, place.y);
    const box = notice.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) notice.scrollIntoView({ block: "center" });
    notice.focus({ preventScroll: true });
  }
  backInPlace();

  window.addEventListener("pageshow", () => {
    for (const form of document.querySelectorAll("form[data-sending]")) {
      delete form.dataset.sending;
      const button = form.querySelector("button[data-busy]");
      button.classList.remove("is-loading");
      button.removeAttribute("aria-disabled");
    }
  });

  // ---------------------------------------------------------------- times

  // Times arrive in UTC; show them in the reader's zone, as "3 min ago" when recent.
  const clock = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  function showTimes(root) {
    const now = Date.now();
    for (const node of root.querySelectorAll("time[data-relative]")) {
      const at = Date.parse(node.getAttribute("datetime"));
      if (Number.isNaN(at)) continue;
      node.textContent = relative(Math.round((now - at) / 1000), at);
      node.title = `${clock.format(at)} (${node.getAttribute("datetime").replace("T", " ").slice(0, 19)} UTC)`;
    }
  }
  function relative(seconds, at) {
    if (seconds < 0) return `in ${Math.max(1, -seconds)} s`; // a retry that is due
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return clock.format(at);
  }
  showTimes(document);
  setInterval(() => document.hidden || showTimes(document), 10_000);

  // A wait the server gave in seconds ("You can submit again in 59 s"), counted down from
  // when the page showed it (the reader's clock may not agree with the server's).
  function countDown() {
    for (const node of document.querySelectorAll("[data-countdown]")) {
      node.dataset.shownAt ??= String(Date.now());
      const left = Number(node.dataset.countdown) - Math.floor((Date.now() - Number(node.dataset.shownAt)) / 1000);
      node.textContent = left > 0 ? `You can submit again in ${left} s.` : "You can submit again now.";
    }
  }
  if (document.querySelector("[data-countdown]")) setInterval(countDown, 1000);

  // ---------------------------------------------------------------- a photo, large

  // Without this a photo's link simply opens the image. The dialog closes with Esc, its
  // close button or a click beside the photo, and gives focus back to the photo's link.
  const viewer = document.getElementById("photo-viewer");
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a.photo-link") : null;
    if (!link || !viewer || typeof viewer.showModal !== "function" || event.metaKey || event.ctrlKey || event.shiftKey)
      return;
    event.preventDefault();
    const alt = link.querySelector("img")?.alt ?? "";
    const large = viewer.querySelector("img");
    large.src = link.href;
    large.alt = alt;
    viewer.querySelector(".photo-viewer-caption").textContent = alt;
    viewer.showModal();
  });
  viewer?.addEventListener("click", (event) => event.target === viewer && viewer.close());

  // ---------------------------------------------------------------- a selection of tasks

  // The list's checkboxes work without this; with it, one box ticks the whole page and the
  // bar says how many are ticked. Live refreshes keep the ticks (see swap).
  function showTicked() {
    const boxes = [...document.querySelectorAll('#tasks-table input[name="ids"]')];
    const ticked = boxes.filter((box) => box.checked).length;
    const all = document.getElementById("select-page");
    if (all) {
      all.hidden = boxes.length === 0;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    const count = document.querySelector('[data-role="ticked-count"]');
    if (count) count.textContent = ticked ? ` (${ticked})` : "";
  }
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement)) return;
    if (box.id === "select-page")
      for (const one of document.querySelectorAll('#tasks-table input[name="ids"]')) one.checked = box.checked;
    if (box.id === "select-page" || box.name === "ids") showTicked();
  });
  showTicked();

  const page = document.body.dataset.page;
  if (!REGIONS[page] || typeof window.EventSource !== "function") return;

  // Later gallery pages stay put while someone looks at them; only the task list follows.
  const laterPage = page === "home" && Number(new URLSearchParams(location.search).get("page")) > 1;
  const regions = laterPage ? ["recent-tasks"] : REGIONS[page];
  // The page keeps following what it was opened for (the banner of a submitted task), but a
  // reload shows a plain page: the one-time parts leave the address bar.
  const url = location.href;
  const plain = new URL(location.href);
  for (const once of ["submitted", "cleared"]) plain.searchParams.delete(once);
  if (plain.href !== location.href) history.replaceState(history.state, "", plain.href);

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
      if (res.ok) {
        const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
        swap(fresh);
        // What the panels show now, for the next monitor event.
        if (fresh.body.dataset.panels) document.body.dataset.panels = fresh.body.dataset.panels;
      }
    } catch {
      // Offline for a moment: the next event tries again.
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function swap(fresh) {
    const focus = focusedIn(regions);
    const opened = openDetails(regions);
    const ticked = new Set(
      [...document.querySelectorAll('#tasks-table input[name="ids"]:checked')].map((box) => box.value),
    );
    const everyMatch = document.getElementById("bulk-scope-search")?.checked;
    const shownBefore = new Set([...document.querySelectorAll("figure[data-photo-id]")].map((f) => f.dataset.photoId));
    const holdGallery = regions.includes("gallery") && readerIsBelow("gallery");
    for (const id of regions) {
      const incoming = fresh.getElementById(id);
      if (holdGallery && GALLERY.includes(id)) held.set(id, incoming);
      else replace(id, incoming, shownBefore);
    }
    if (holdGallery) offerHeld(shownBefore);
    for (const box of document.querySelectorAll('#tasks-table input[name="ids"]')) box.checked = ticked.has(box.value);
    const scope = document.getElementById("bulk-scope-search");
    if (scope && everyMatch) scope.checked = true;
    showTicked();
    showTimes(document);
    reopen(opened);
    if (focus) restoreFocus(focus);
  }

  function replace(id, incoming, shownBefore) {
    const current = document.getElementById(id);
    if (!current || !incoming || current.isEqualNode(incoming)) return;
    const next = document.importNode(incoming, true);
    keepPhotos(current, next, shownBefore);
    current.replaceWith(next);
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

  // ---------------------------------------------------------------- focus and open details

  // A fresh region replaces the old one, and with it the element that had the keyboard focus
  // and every <details> the reader opened. Each is found again in the fresh markup by where it
  // sits: under the nearest element with an id or a key (a worker, a task, a failure group, a
  // letter), then by tag and position, so "Pause all" or a worker's Pause keeps the focus.
  const KEYS = ["data-worker-id", "data-task-id", "data-fingerprint", "data-key", "data-photo-id", "data-attempt"];

  function placeOf(node, root) {
    const path = [];
    let at = node;
    while (at && at !== root && !at.id && !KEYS.some((k) => at.hasAttribute(k))) {
      const parent = at.parentElement;
      if (!parent) return null;
      path.unshift([at.tagName, [...parent.children].filter((c) => c.tagName === at.tagName).indexOf(at)]);
      at = parent;
    }
    if (!at) return null;
    const key = KEYS.find((k) => at.hasAttribute(k));
    const anchor = at.id
      ? `#${CSS.escape(at.id)}`
      : `${at.tagName.toLowerCase()}[${key}="${CSS.escape(at.getAttribute(key))}"]`;
    return { anchor, path };
  }

  function find(place) {
    let at = document.querySelector(place.anchor);
    for (const [tag, index] of place.path) {
      at = at ? [...at.children].filter((c) => c.tagName === tag)[index] : null;
    }
    return at || null;
  }

  function rootOf(node, ids) {
    return ids.map((id) => document.getElementById(id)).find((root) => root && root.contains(node)) || null;
  }

  function focusedIn(ids) {
    const active = document.activeElement;
    if (!active || active === document.body) return null;
    const root = rootOf(active, ids);
    return root ? placeOf(active, root) : null;
  }

  function restoreFocus(place) {
    if (document.activeElement && document.activeElement !== document.body) return;
    const target = find(place);
    if (target) target.focus({ preventScroll: true });
  }

  function openDetails(ids) {
    return [...document.querySelectorAll("details[open]")].flatMap((details) => {
      const root = rootOf(details, ids);
      const place = root && placeOf(details, root);
      return place ? [place] : [];
    });
  }

  function reopen(places) {
    for (const place of places) {
      const details = find(place);
      if (details instanceof HTMLDetailsElement) details.open = true;
    }
  }

  // ---------------------------------------------------------------- a reader scrolled down

  // New photos go in at the top of the gallery. Someone scrolled down into it would see what
  // they look at pushed away, so the fresh gallery waits behind a prompt until they ask.
  const held = new Map();

  function readerIsBelow(id) {
    const region = document.getElementById(id);
    return Boolean(region) && region.getBoundingClientRect().top < -40;
  }

  function offerHeld(shownBefore) {
    const gallery = held.get("gallery");
    if (!gallery) return;
    const fresh = [...gallery.querySelectorAll("figure[data-photo-id]")].filter(
      (f) => !shownBefore.has(f.dataset.photoId),
    ).length;
    const current = document.getElementById("gallery");
    if (fresh === 0 && (!current || current.isEqualNode(gallery))) return held.clear();
    const prompt = document.getElementById("new-photos");
    if (!prompt) return;
    prompt.querySelector("[data-count]").textContent =
      fresh === 1 ? "1 new photo" : fresh > 1 ? `${fresh} new photos` : "The gallery changed";
    prompt.hidden = false;
  }

  document.getElementById("new-photos")?.addEventListener("click", () => {
    const shownBefore = new Set([...document.querySelectorAll("figure[data-photo-id]")].map((f) => f.dataset.photoId));
    for (const [id, incoming] of held) replace(id, incoming, shownBefore);
    held.clear();
    document.getElementById("new-photos").hidden = true;
    const gallery = document.getElementById("gallery");
    gallery?.scrollIntoView({ block: "start" });
    // The button is hidden now: the focus goes to the newest photo's link, not to <body>.
    gallery?.querySelector("figure[data-photo-id] a.photo-link")?.focus({ preventScroll: true });
    showTimes(document);
  });

  // ---------------------------------------------------------------- live events

  function indicate(state) {
    const node = document.getElementById("live-indicator");
    if (!node) return;
    node.hidden = false;
    node.className = "tag " + INDICATOR[state][0];
    node.textContent = INDICATOR[state][1];
    node.dataset.state = state;
  }

  // A task this page is about (its own page, or the one just submitted) is announced when
  // its state changes, for readers who do not see the redraw.
  const followed = document.querySelector("[data-follow-task]")?.dataset.followTask;
  const announced = new Map();
  function announce(event) {
    if (!followed || event.type !== "task") return;
    let task;
    try {
      task = JSON.parse(event.data).task;
    } catch {
      return;
    }
    if (task?.id !== followed || announced.get(task.id) === task.state) return;
    announced.set(task.id, task.state);
    const words = {
      STARTED: "started",
      RETRY: "will try again",
      SUCCESS: `finished with ${task.photoCount} photos`,
      FAILURE: "failed",
      REVOKED: "was cancelled",
    };
    const announcer = document.getElementById("announcer");
    if (announcer && words[task.state]) announcer.textContent = `${task.label} task ${words[task.state]}.`;
  }

  // The page says which event it was made after, so the first connect replays only what
  // happened since (usually nothing) instead of a snapshot that makes it fetch itself again.
  // The browser reconnects by itself with Last-Event-ID; only when it gives up (an error
  // answer) do we open a new stream ourselves: when the server says it may (a refused
  // stream's Retry-After), or after a pause.
  let lastEventId = document.body.dataset.liveFrom || "";
  let source = null;
  let retry = null;

  // Out of touch for more than a moment (the web stopped, the network dropped), the page says
  // that what it shows may be old, and greys the live parts, rather than go on claiming a
  // worker alive or the broker connected. A stream that closes and reopens at once (the
  // server ends streams after a while) is not worth a word.
  const STALE_AFTER_MS = 3000;
  let staleTimer = null;
  function markStale() {
    for (const id of regions) document.getElementById(id)?.classList.add("is-out-of-date");
    const notice = document.getElementById("stale-notice");
    if (!notice) return;
    notice.querySelector("[data-since]").textContent = new Intl.DateTimeFormat(undefined, {
      timeStyle: "medium",
    }).format(Date.now() - STALE_AFTER_MS);
    notice.hidden = false;
  }
  function markLive() {
    clearTimeout(staleTimer);
    staleTimer = null;
    const notice = document.getElementById("stale-notice");
    if (!notice || notice.hidden) return;
    notice.hidden = true;
    for (const id of regions) document.getElementById(id)?.classList.remove("is-out-of-date");
    schedule(); // whatever changed meanwhile
  }

  function connect() {
    clearTimeout(retry);
    if (source) source.close();
    indicate("connecting");
    source = new EventSource(lastEventId ? `/events?lastEventId=${encodeURIComponent(lastEventId)}` : "/events");
    source.onopen = () => {
      indicate("live");
      markLive();
    };
    source.onerror = () => {
      indicate("reconnecting");
      staleTimer ??= setTimeout(markStale, STALE_AFTER_MS);
      if (source.readyState === EventSource.CLOSED) reconnectWhenAllowed();
    };
    for (const type of EVENTS[page]) {
      source.addEventListener(type, (event) => {
        if (event.lastEventId) lastEventId = event.lastEventId;
        if (event.type === "monitor" && !monitorNews(event)) return;
        announce(event);
        schedule();
      });
    }
  }

  // A page drawn with the monitor's panels says which (data-panels): an event about the
  // panels it shows already is not news. The home and task pages show the monitor's news only
  // as "no worker is running": they redraw when that changes, not on every change of the
  // queue's numbers.
  function monitorNews(event) {
    let news;
    try {
      news = JSON.parse(event.data);
    } catch {
      return false;
    }
    const drawn = document.body.dataset.panels;
    if (drawn !== undefined) return news.panels !== drawn;
    const shown = document.getElementById("worker-notice")?.dataset.workers;
    if (shown === undefined) return true;
    return typeof news.workers === "string" && news.workers !== shown;
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
})();

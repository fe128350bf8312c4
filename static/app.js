// GenDog's progressive enhancement. Without it every page still works; with it the pages
// follow tasks and photos live over Server-Sent Events, and the tasks page polls the
// queue and the workers. The DOM is built with createElement and textContent only: task
// errors, labels and urls come from outside and are never parsed as HTML.
(function () {
  "use strict";

  // The same colours as views/_macros.njk.
  var STATE_COLOURS = {
    PENDING: "is-light",
    STARTED: "is-info",
    RETRY: "is-warning",
    SUCCESS: "is-success",
    FAILURE: "is-danger",
    REVOKED: "is-dark",
  };
  var OUTCOME_COLOURS = {
    RUNNING: "is-info",
    RETRY: "is-warning",
    SUCCESS: "is-success",
    FAILURE: "is-danger",
    LOST: "is-dark",
  };
  var RECENT_TASKS_CAP = 10; // the home page's list, as the server renders it
  var TASKS_TABLE_CAP = 100;
  var PHOTOS_PER_PAGE = 48; // lib/gallery.ts PHOTOS_PER_PAGE
  var POLL_MS = 3000;
  var WAITING_TEXT = "waiting for the queue";
  var INDICATOR_STATES = {
    connecting: ["is-light", "connecting…"],
    live: ["is-success", "live"],
    reconnecting: ["is-warning", "reconnecting…"],
    offline: ["is-danger", "offline"],
  };


  // ---------------------------------------------------------------- small helpers

  /** el("span", { className: "tag", text: "x", data: { role: "state" }, attrs: { title: "t" } }, [children]) */
  function el(tag, options, children) {
    var node = document.createElement(tag);
    options = options || {};
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    if (options.data) {
      Object.keys(options.data).forEach(function (key) {
        node.dataset[key] = String(options.data[key]);
      });
    }
    if (options.attrs) {
      Object.keys(options.attrs).forEach(function (key) {
        node.setAttribute(key, String(options.attrs[key]));
      });
    }
    (children || []).forEach(function (child) {
      node.append(child);
    });
    return node;
  }

  function byRole(root, role) {
    return root ? root.querySelector('[data-role="' + role + '"]') : null;
  }

  function setText(node, value) {
    if (node) node.textContent = String(value);
  }

  /** The `datetime` filter of app.ts. */
  function formatDateTime(iso) {
    return iso ? String(iso).replace("T", " ").slice(0, 19) + " UTC" : "—";
  }

  /** The `duration` filter of app.ts. */
  function formatDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
  }

  function taskHref(id) {
    return "/tasks/" + encodeURIComponent(id);
  }

  function flash(row) {
    row.classList.remove("is-updated");
    void row.offsetWidth; // restart the animation
    row.classList.add("is-updated");
  }

  async function getJson(url) {
    var res = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    var body = null;
    try {
      body = await res.json();
    } catch (_err) {
      body = null;
    }
    return { ok: res.ok, status: res.status, body: body };
  }

  // ---------------------------------------------------------------- confirm dialogs

  function setUpConfirm() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      var submitter = event.submitter;
      var message = (submitter && submitter.dataset && submitter.dataset.confirm) || form.dataset.confirm;
      if (message && !window.confirm(message)) event.preventDefault();
    });
  }

  // ---------------------------------------------------------------- task tags and rows

  function stateTag(task) {
    var tag = el("span", { data: { role: "state" } });
    applyStateTag(tag, task);
    return tag;
  }

  function applyStateTag(tag, task) {
    if (!tag) return false;
    var changed = tag.dataset.state !== task.state;
    tag.className = "tag " + (STATE_COLOURS[task.state] || "is-light");
    tag.textContent = task.state;
    tag.dataset.state = task.state;
    if (task.error) tag.title = task.error;
    else tag.removeAttribute("title");
    return changed;
  }

  function waitingMarker() {
    return el("span", {
      className: "tag is-warning is-light",
      text: WAITING_TEXT,
      data: { role: "waiting" },
      attrs: { title: "Saved, and sent as soon as RabbitMQ is reachable" },
    });
  }

  /** Adds or removes the "waiting for the queue" tag right after the state tag. */
  function applyWaiting(container, task) {
    if (!container) return;
    var marker = byRole(container, "waiting");
    if (task.waitingForQueue && !marker) {
      var tag = byRole(container, "state");
      if (tag) tag.after(" ", waitingMarker());
    } else if (!task.waitingForQueue && marker) {
      var before = marker.previousSibling;
      if (before && before.nodeType === Node.TEXT_NODE && before.textContent.trim() === "") before.remove();
      marker.remove();
    }
  }

  function idLink(task) {
    return el("a", { className: "task-id", text: task.id.slice(0, 8), attrs: { href: taskHref(task.id), title: task.id } });
  }

  function homeRow(task) {
    return el("tr", { data: { taskId: task.id, createdAt: task.createdAt } }, [
      el("td", {}, [idLink(task)]),
      el("td", {}, [
        el("span", { text: task.label, data: { role: "label" } }),
        " ",
        el("span", { className: "has-text-grey" }, ["× ", el("span", { text: task.limit, data: { role: "limit" } })]),
      ]),
      el("td", {}, [stateTag(task)]),
      el("td", { className: "has-text-right has-text-grey", attrs: { title: "photos fetched" } }, [
        el("span", { text: task.photoCount, data: { role: "photo-count" } }),
        " photos",
      ]),
    ]);
  }

  function tasksTableRow(task) {
    return el("tr", { data: { taskId: task.id, createdAt: task.createdAt } }, [
      el("td", {}, [idLink(task)]),
      el("td", { text: task.label, data: { role: "label" } }),
      el("td", { className: "has-text-right", text: task.limit, data: { role: "limit" } }),
      el("td", {}, [stateTag(task)]),
      el("td", { className: "has-text-right", text: task.attempts, data: { role: "attempts" } }),
      el("td", { className: "has-text-right", text: task.photoCount, data: { role: "photo-count" } }),
      el("td", { className: "is-nowrap", text: formatDateTime(task.createdAt), data: { role: "created" } }),
      el("td", { className: "has-text-right is-nowrap", text: formatDuration(task.waitMs), data: { role: "wait" } }),
      el("td", { className: "has-text-right is-nowrap", text: formatDuration(task.runtimeMs), data: { role: "runtime" } }),
    ]);
  }

  /** Brings a row (home or tasks table) up to date with a TaskView; returns whether the state changed. */
  function updateTaskRow(row, task) {
    var changed = applyStateTag(byRole(row, "state"), task);
    applyWaiting(row, task);
    setText(byRole(row, "photo-count"), task.photoCount);
    setText(byRole(row, "attempts"), task.attempts);
    setText(byRole(row, "wait"), formatDuration(task.waitMs));
    setText(byRole(row, "runtime"), formatDuration(task.runtimeMs));
    if (changed) flash(row);
    return changed;
  }

  function findTaskRow(root, id) {
    var rows = root.querySelectorAll("tr[data-task-id]");
    for (var i = 0; i < rows.length; i++) if (rows[i].dataset.taskId === id) return rows[i];
    return null;
  }

  /** Newest first, as the server lists them: createdAt desc, then id desc. */
  function isNewer(task, row) {
    var created = row.dataset.createdAt || "";
    if (task.createdAt !== created) return task.createdAt > created;
    return task.id > (row.dataset.taskId || "");
  }

  /**
   * Updates the task's row, or inserts a new row where it sorts. A task older than every
   * row shown belongs to a later page, so it is left out (unless the list is empty).
   */
  function upsertTaskRow(tbody, task, build, options) {
    var row = findTaskRow(tbody, task.id);
    if (row) {
      updateTaskRow(row, task);
      return;
    }
    if (!options.insert) return;
    var rows = Array.prototype.slice.call(tbody.querySelectorAll("tr[data-task-id]"));
    var before = rows.find(function (r) {
      return isNewer(task, r);
    });
    if (!before && rows.length > 0) return;
    var fresh = build(task);
    applyWaiting(fresh, task);
    tbody.insertBefore(fresh, before || null);
    flash(fresh);
    tbody.querySelectorAll('tr[data-role="empty"]').forEach(function (r) {
      r.remove();
    });
    rows = tbody.querySelectorAll("tr[data-task-id]");
    for (var i = options.cap; i < rows.length; i++) rows[i].remove();
  }

  // ---------------------------------------------------------------- photos

  function photoFigure(photo) {
    var img = el("img", {
      attrs: { src: photo.url, alt: photo.label, loading: "lazy", width: 300, height: 300 },
    });
    return el("figure", { className: "image gallery-item is-new", data: { photoId: photo.id } }, [
      img,
      el("figcaption", { text: photo.label }),
    ]);
  }

  function galleryFigures(gallery) {
    return Array.prototype.slice.call(gallery.querySelectorAll("figure[data-photo-id]"));
  }

  function photoIds(gallery) {
    return new Set(
      galleryFigures(gallery).map(function (f) {
        return f.dataset.photoId;
      }),
    );
  }

  function showEmptyGallery(gallery, text) {
    if (document.getElementById("gallery-empty")) return;
    gallery.after(el("p", { className: "gallery-empty has-text-grey", text: text, attrs: { id: "gallery-empty" } }));
  }

  function hideEmptyGallery() {
    var empty = document.getElementById("gallery-empty");
    if (empty) empty.remove();
  }

  // ---------------------------------------------------------------- live events

  function setIndicator(state) {
    var node = document.getElementById("live-indicator");
    if (!node) return;
    var look = INDICATOR_STATES[state];
    node.hidden = false;
    node.className = "tag " + look[0];
    node.textContent = look[1];
    node.dataset.state = state;
    node.title = state === "live" ? "Updates arrive as they happen" : "Updates are paused; the page resyncs when it reconnects";
  }

  /**
   * One EventSource for the page. The browser reconnects by itself and sends
   * Last-Event-ID, so the server replays what was missed or sends a snapshot. If the
   * browser gives up (the server answered with an error), try again with the last id.
   */
  function liveEvents(handlers) {
    if (typeof window.EventSource !== "function") return;
    // Events about one task can arrive out of order (they take different paths through
    // the broker); a task never goes back to an older version of itself.
    var seen = {};
    function isStale(task) {
      if (!task || !task.updatedAt) return false;
      if (seen[task.id] && seen[task.id] > task.updatedAt) return true;
      seen[task.id] = task.updatedAt;
      return false;
    }
    var lastId = "";
    var source = null;
    var retryTimer = null;

    function open() {
      clearTimeout(retryTimer);
      if (source) source.close();
      source = new EventSource(lastId ? "/events?lastEventId=" + encodeURIComponent(lastId) : "/events");
      setIndicator("connecting");
      source.onopen = function () {
        setIndicator("live");
      };
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) {
          setIndicator("offline");
          retryTimer = setTimeout(open, 5000);
        } else {
          setIndicator("reconnecting");
        }
      };
      ["task", "photos", "photos-cleared", "snapshot"].forEach(function (type) {
        source.addEventListener(type, function (event) {
          if (event.lastEventId) lastId = event.lastEventId;
          var data;
          try {
            data = JSON.parse(event.data);
          } catch (_err) {
            return;
          }
          var handler = handlers[type];
          if (!handler) return;
          if (type === "task" && isStale(data.task)) return;
          try {
            handler(data);
          } catch (err) {
            console.error("GenDog: could not apply a " + type + " event", err);
          }
        });
      });
    }

    open();
    // Let the page go into the back/forward cache, and pick up again when it returns.
    window.addEventListener("pagehide", function () {
      clearTimeout(retryTimer);
      if (source) source.close();
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) open();
    });
  }

  // ---------------------------------------------------------------- home page

  function homeHandlers() {
    var tbody = document.getElementById("recent-tasks");
    var gallery = document.getElementById("gallery");
    var count = document.getElementById("gallery-count");
    var onFirstPage = !gallery || (gallery.dataset.galleryPage || "1") === "1";
    var emptyText = "No photos yet. Pick a breed and press Submit.";
    var newestSeen = 0;
    if (gallery) {
      galleryFigures(gallery).forEach(function (f) {
        newestSeen = Math.max(newestSeen, Number(f.dataset.photoId) || 0);
      });
    }

    function total() {
      return count ? Number(count.dataset.total) || 0 : 0;
    }

    function setCount(newTotal) {
      if (!count) return;
      count.dataset.total = String(newTotal);
      setText(byRole(count, "total"), newTotal);
      setText(byRole(count, "shown"), galleryFigures(gallery).length);
      if (newTotal > PHOTOS_PER_PAGE && !document.getElementById("gallery-pages")) {
        gallery.after(
          el("nav", { className: "pagination is-centered is-small mt-5", attrs: { id: "gallery-pages", "aria-label": "gallery pages" } }, [
            el("a", { className: "pagination-next", text: "Older", attrs: { href: "/?page=2" } }),
          ]),
        );
      }
    }

    /** Puts photos where they sort (newest id first); page 1 keeps its newest 48. */
    function addPhotos(photos) {
      if (!gallery || !onFirstPage || !photos.length) return;
      var present = photoIds(gallery);
      var added = 0;
      photos.forEach(function (photo) {
        if (present.has(String(photo.id))) return;
        var figures = galleryFigures(gallery);
        var before = figures.find(function (f) {
          return Number(f.dataset.photoId) < photo.id;
        });
        if (!before && figures.length >= PHOTOS_PER_PAGE) return;
        gallery.insertBefore(photoFigure(photo), before || null);
        present.add(String(photo.id));
        if (photo.id > newestSeen) {
          newestSeen = photo.id;
          added++;
        }
      });
      galleryFigures(gallery)
        .slice(PHOTOS_PER_PAGE)
        .forEach(function (f) {
          f.remove();
        });
      if (galleryFigures(gallery).length) hideEmptyGallery();
      setCount(total() + added);
    }

    function clearGallery() {
      if (!gallery) return;
      gallery.replaceChildren();
      showEmptyGallery(gallery, emptyText);
      var pages = document.getElementById("gallery-pages");
      if (pages) pages.remove();
      setCount(0);
    }

    /** After a reconnect that could not be replayed: page 1 of the gallery as it is now. */
    async function resyncGallery() {
      if (!gallery || !onFirstPage) return;
      var res = await getJson("/api/photos?limit=" + PHOTOS_PER_PAGE);
      if (!res.ok || !res.body || !Array.isArray(res.body.photos)) return;
      var keep = new Set(
        res.body.photos.map(function (p) {
          return String(p.id);
        }),
      );
      if (keep.size === 0) return clearGallery();
      galleryFigures(gallery).forEach(function (f) {
        if (!keep.has(f.dataset.photoId)) f.remove();
      });
      addPhotos(res.body.photos);
    }

    return {
      task: function (event) {
        if (tbody) upsertTaskRow(tbody, event.task, homeRow, { insert: true, cap: RECENT_TASKS_CAP });
      },
      snapshot: function (event) {
        if (tbody) {
          event.tasks
            .slice()
            .reverse()
            .forEach(function (task) {
              upsertTaskRow(tbody, task, homeRow, { insert: true, cap: RECENT_TASKS_CAP });
            });
        }
        resyncGallery().catch(function () {});
      },
      photos: function (event) {
        addPhotos(event.photos);
      },
      "photos-cleared": function () {
        clearGallery();
      },
    };
  }

  // ---------------------------------------------------------------- tasks page

  function tasksHandlers() {
    var table = document.getElementById("tasks-table");
    var tbody = table ? table.tBodies[0] : null;
    var insert = !!table && table.dataset.filtered !== "true";

    function apply(task) {
      if (tbody) upsertTaskRow(tbody, task, tasksTableRow, { insert: insert, cap: TASKS_TABLE_CAP });
    }

    return {
      task: function (event) {
        apply(event.task);
      },
      snapshot: function (event) {
        event.tasks.slice().reverse().forEach(apply);
      },
    };
  }

  function pollQueuePanel() {
    var panel = document.getElementById("queue-panel");
    var workers = document.getElementById("workers-panel");
    var busy = false;

    function field(name) {
      return panel ? panel.querySelector('[data-queue-field="' + name + '"]') : null;
    }

    function shown(value) {
      return value === null || value === undefined ? "—" : String(value);
    }

    function renderQueue(overview, reachable) {
      if (!panel) return;
      var broker = field("broker");
      if (broker) {
        var connected = reachable && overview && overview.broker && overview.broker.connected;
        broker.className = "tag " + (connected ? "is-success" : reachable ? "is-danger" : "is-warning");
        broker.textContent = connected ? "connected" : reachable ? "not connected" : "GenDog unreachable";
      }
      if (!overview) return;
      ["queue", "ready", "unacked", "consumers", "retrying", "dead", "waitingInOutbox"].forEach(function (name) {
        setText(field(name), shown(overview[name]));
      });
      setText(field("updated"), "Updated " + new Date().toLocaleTimeString());
    }

    function renderWorkers(list) {
      if (!workers) return;
      if (!list.length) {
        workers.replaceChildren(
          el("p", { className: "has-text-grey is-size-7", data: { role: "no-workers" } }, [
            "No workers are running. Start one with ",
            el("code", { text: "npm run worker" }),
            ".",
          ]),
        );
        return;
      }
      workers.replaceChildren.apply(
        workers,
        list.map(function (w) {
          var seconds = Math.max(0, Math.round((Date.now() - Date.parse(w.lastSeen)) / 1000));
          return el("div", { className: "worker" + (w.alive ? "" : " is-stale"), data: { workerId: w.id } }, [
            el("div", {}, [
              el("span", { className: "worker-name", text: w.id }),
              " ",
              el("span", { className: "tag " + (w.alive ? "is-success" : "is-danger"), text: w.alive ? "alive" : "silent", data: { role: "alive" } }),
              " ",
              el("span", { className: "tag " + (w.ready ? "is-light" : "is-warning"), text: w.ready ? "ready" : "not ready", data: { role: "ready" } }),
            ]),
            el("div", { className: "worker-stats", text: w.host + " · pid " + w.pid + " · concurrency " + w.concurrency }),
            el("div", {
              className: "worker-stats",
              text: "in flight " + w.inFlight + " · done " + w.done + " · failed " + w.failed + " · skipped " + (w.skipped || 0) + " · seen " + seconds + " s ago",
            }),
          ]);
        }),
      );
    }

    async function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        var results = await Promise.allSettled([getJson("/api/queue"), getJson("/api/workers")]);
        var queue = results[0].status === "fulfilled" ? results[0].value : null;
        // /api/queue answers 503 with the same JSON when the broker is down.
        renderQueue(queue && queue.body, !!queue && !!queue.body);
        var found = results[1].status === "fulfilled" ? results[1].value : null;
        if (found && found.ok && found.body && Array.isArray(found.body.workers)) renderWorkers(found.body.workers);
      } finally {
        busy = false;
      }
    }

    refresh();
    setInterval(refresh, POLL_MS);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  }

  // ---------------------------------------------------------------- one task's page

  function taskHandlers() {
    var detail = document.getElementById("task-detail");
    if (!detail) return {};
    var taskId = detail.dataset.taskId;
    var gallery = document.getElementById("gallery");
    var emptyText = "No photos from this task yet.";
    var fetching = false;
    var again = false;
    var timer = null;

    function renderTask(task) {
      var heading = detail.querySelector("h1");
      applyStateTag(byRole(detail, "state"), task);
      applyWaiting(heading, task);
      setText(byRole(detail, "photo-count"), task.photoCount);
      setText(byRole(detail, "attempts"), task.attempts);
      renderError(task.error);
      renderCancel(task.cancellable);
      renderTimeline(task);
    }

    function renderError(error) {
      var slot = document.getElementById("task-error-slot");
      var box = document.getElementById("task-error");
      if (!error) {
        if (box) box.remove();
        return;
      }
      if (!box) {
        box = el("div", { className: "notification is-danger", attrs: { id: "task-error" }, data: { role: "error" } });
        if (slot) slot.append(box);
      }
      box.textContent = error;
    }

    function renderCancel(cancellable) {
      var form = document.getElementById("cancel-form");
      if (!cancellable) {
        if (form) form.remove();
        return;
      }
      var slot = document.getElementById("cancel-slot");
      if (form || !slot || !detail.dataset.csrf) return;
      var csrf = el("input", { attrs: { type: "hidden", name: "_csrf" } });
      csrf.value = detail.dataset.csrf;
      slot.append(
        el("form", { attrs: { method: "post", action: taskHref(taskId) + "/cancel", id: "cancel-form" }, data: { confirm: "Cancel this task? A worker will not run it." } }, [
          csrf,
          el("button", { className: "button is-warning", text: "Cancel task", attrs: { type: "submit" } }),
        ]),
      );
    }

    function renderTimeline(task) {
      var cells = {
        createdAt: formatDateTime(task.createdAt),
        queuedAt: task.waitingForQueue ? WAITING_TEXT : formatDateTime(task.queuedAt),
        startedAt: formatDateTime(task.startedAt),
        finishedAt: formatDateTime(task.finishedAt),
        retryAt: formatDateTime(task.retryAt),
        waitMs: formatDuration(task.waitMs),
        runtimeMs: formatDuration(task.runtimeMs),
      };
      Object.keys(cells).forEach(function (name) {
        setText(detail.querySelector('[data-field="' + name + '"]'), cells[name]);
      });
      var retryRow = detail.querySelector('[data-row="retryAt"]');
      if (retryRow) retryRow.hidden = !task.retryAt;
    }

    function renderAttempts(attempts) {
      var tbody = document.getElementById("attempts");
      if (!tbody) return;
      if (!attempts.length) {
        tbody.replaceChildren(
          el("tr", { data: { role: "empty" } }, [
            el("td", { className: "has-text-grey", text: "No attempts yet: no worker has picked this task up.", attrs: { colspan: 6 } }),
          ]),
        );
        return;
      }
      tbody.replaceChildren.apply(
        tbody,
        attempts.map(function (a) {
          var details = el("td", { className: "attempt-details" });
          if (a.error) details.append(el("span", { className: "attempt-error", text: a.error }));
          if (a.outcome === "RETRY" && typeof a.retryDelayMs === "number") {
            details.append(el("span", { className: "has-text-grey", text: " next try in " + formatDuration(a.retryDelayMs) }));
          }
          return el("tr", { data: { attempt: a.number } }, [
            el("td", { text: a.number }),
            el("td", {}, [el("code", { className: "worker-id", text: a.workerId })]),
            el("td", { className: "is-nowrap", text: formatDateTime(a.startedAt) }),
            el("td", { className: "has-text-right is-nowrap", text: formatDuration(a.durationMs) }),
            el("td", {}, [el("span", { className: "tag " + (OUTCOME_COLOURS[a.outcome] || "is-light"), text: a.outcome, data: { role: "outcome" } })]),
            details,
          ]);
        }),
      );
    }

    /** The task's photos in their order; new ones go at the end. */
    function addPhotos(photos) {
      if (!gallery) return;
      var present = photoIds(gallery);
      photos.forEach(function (photo) {
        if (present.has(String(photo.id))) return;
        gallery.append(photoFigure(photo));
        present.add(String(photo.id));
      });
      if (galleryFigures(gallery).length) hideEmptyGallery();
    }

    function syncPhotos(photos) {
      if (!gallery) return;
      var keep = new Set(
        photos.map(function (p) {
          return String(p.id);
        }),
      );
      galleryFigures(gallery).forEach(function (f) {
        if (!keep.has(f.dataset.photoId)) f.remove();
      });
      addPhotos(photos);
      if (!photos.length) showEmptyGallery(gallery, emptyText);
    }

    /** Re-reads the whole task; several events in a burst cause one or two fetches. */
    function refetchSoon() {
      clearTimeout(timer);
      timer = setTimeout(refetch, 150);
    }

    async function refetch() {
      if (fetching) {
        again = true;
        return;
      }
      fetching = true;
      try {
        var res = await getJson("/api/tasks/" + encodeURIComponent(taskId));
        if (res.ok && res.body && res.body.task) {
          renderTask(res.body.task);
          renderAttempts(res.body.attempts || []);
          syncPhotos(res.body.photos || []);
        }
      } catch (_err) {
        // The next event or reconnect tries again.
      } finally {
        fetching = false;
        if (again) {
          again = false;
          refetchSoon();
        }
      }
    }

    return {
      task: function (event) {
        if (!event.task || event.task.id !== taskId) return;
        renderTask(event.task);
        refetchSoon();
      },
      photos: function (event) {
        if (event.taskId === taskId) addPhotos(event.photos);
      },
      "photos-cleared": function () {
        syncPhotos([]);
      },
      snapshot: function () {
        refetchSoon();
      },
    };
  }

  // ---------------------------------------------------------------- start

  var page = document.body.dataset.page;
  setUpConfirm();
  if (page === "home") liveEvents(homeHandlers());
  if (page === "tasks") {
    liveEvents(tasksHandlers());
    pollQueuePanel();
  }
  if (page === "task") liveEvents(taskHandlers());
})();

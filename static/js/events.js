/* The dashboard's event stream, with one-time tickets (contract amendment 1.2).
 *
 * base.html puts `hx-ext="sse" sse-connect="/api/events"` on <body> (both routes rendered with
 * {% url %}, the ticket route as `data-tickets-url`); htmx's sse extension asks
 * `htmx.createEventSource(url)` for the connection. The one made here fetches a fresh ticket
 * (`POST /api/tickets {purpose: "events"}`, single use, 60 s) before EVERY connect and opens
 * `/api/events?ticket=…`, so no credential ever sits in a URL. The browser's own EventSource
 * retry would reuse the spent ticket, so on any error the stream is closed and reopened here
 * with a new ticket and `last_event_id` (the id of the last event seen), so nothing is lost.
 * The extension keeps its listeners on this object, which forwards the real stream's events.
 *
 * With htmx's eval off, hx-trigger filters such as `[detail.data.includes(id)]` no longer
 * work. Instead, every `container_update` is re-dispatched on <body> as
 * `container-changed-<id>` for each container shown on the page (`data-container-id`) whose id
 * the event mentions, and the container page triggers on `container-changed-<id> from:body`;
 * `function_update` / `invocation_update` likewise become `function-changed-<id>` for the
 * function on the page (`data-function-id`).
 *
 * `window.QuiltTickets.get(purpose)` is shared with the terminal (terminal.js).
 */
(function () {
  "use strict";
  // Always relayed, so the last event id is known even for types no element listens to.
  var TYPES = ["ready", "heartbeat", "container_update", "snapshot_update", "volume_update",
    "terminal_update", "image_update", "operation_update", "network_update", "function_update",
    "invocation_update"];
  var CONNECTING = 0, OPEN = 1, CLOSED = 2;

  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (e) { /* fall back to the cookie */ }
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  /** A one-time ticket for `purpose`; null when this server has no ticket route (404: the
   * session cookie alone authenticates the stream); rejects with `.status` otherwise. */
  function getTicket(purpose) {
    // The route comes from the page (base.html renders it with {% url %} on <body>).
    var url = document.body.dataset.ticketsUrl;
    if (!url) return Promise.resolve(null); // signed out: no ticket to ask for
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ purpose: purpose }),
    }).then(function (r) {
      if (r.status === 404) return null;
      if (r.status !== 201) { var err = new Error("ticket refused (HTTP " + r.status + ")"); err.status = r.status; throw err; }
      return r.json().then(function (body) { return body.ticket; });
    });
  }

  function withParams(url, params) {
    var u = new URL(url, location.href);
    Object.keys(params).forEach(function (k) { if (params[k]) u.searchParams.set(k, params[k]); });
    return u.pathname + u.search;
  }

  /** Looks like an EventSource to the sse extension; reconnects itself with a new ticket. */
  function TicketedEventSource(url) {
    this.url = url;
    this.readyState = CONNECTING;
    this.withCredentials = true;
    this.onopen = null; this.onerror = null; this.onmessage = null;
    this._listeners = {};
    this._real = null;
    this._lastId = "";
    this._attempt = 0;
    this._timer = null;
    this._connect();
  }

  TicketedEventSource.prototype.addEventListener = function (type, fn) {
    var list = this._listeners[type] || (this._listeners[type] = []);
    if (list.indexOf(fn) < 0) list.push(fn);
    if (this._real) this._relay(this._real, type);
  };

  TicketedEventSource.prototype.removeEventListener = function (type, fn) {
    var list = this._listeners[type];
    if (list && list.indexOf(fn) >= 0) list.splice(list.indexOf(fn), 1);
  };

  TicketedEventSource.prototype.close = function () {
    this.readyState = CLOSED;
    clearTimeout(this._timer);
    if (this._real) { this._real.close(); this._real = null; }
  };

  TicketedEventSource.prototype._relay = function (real, type) {
    if (real.relayed[type]) return;
    real.relayed[type] = true;
    var self = this;
    real.addEventListener(type, function (ev) {
      if (real !== self._real) return;
      if (ev.lastEventId) self._lastId = ev.lastEventId;
      if (type === "message" && self.onmessage) self.onmessage(ev);
      (self._listeners[type] || []).slice().forEach(function (fn) { fn.call(self, ev); });
    });
  };

  TicketedEventSource.prototype._connect = function () {
    var self = this;
    if (self.readyState === CLOSED) return;
    getTicket("events").then(function (ticket) {
      if (self.readyState === CLOSED) return;
      var real = new EventSource(withParams(self.url, { ticket: ticket, last_event_id: self._lastId }), { withCredentials: true });
      real.relayed = {};
      self._real = real;
      TYPES.concat(["message"], Object.keys(self._listeners)).forEach(function (t) { self._relay(real, t); });
      real.onopen = function (ev) {
        if (real !== self._real) return;
        self._attempt = 0;
        self.readyState = OPEN;
        if (self.onopen) self.onopen(ev);
      };
      real.onerror = function (ev) {
        if (real !== self._real) return;
        real.close(); // its own retry would reuse the spent ticket
        self._real = null;
        self._retry(ev);
      };
    }, function () { self._retry(new Event("error")); });
  };

  TicketedEventSource.prototype._retry = function (ev) {
    if (this.readyState === CLOSED) return;
    // CONNECTING, never CLOSED: the extension then leaves reconnecting (and its listeners) to us.
    this.readyState = CONNECTING;
    if (this.onerror) this.onerror(ev);
    if (this.readyState === CLOSED) return; // the extension closed us (its element is gone)
    var self = this, delay = Math.min(30000, 500 * Math.pow(2, this._attempt));
    this._attempt += 1;
    this._timer = setTimeout(function () { self._connect(); }, delay);
  };

  function announceContainerChanges(ev) {
    var seen = {};
    document.querySelectorAll("[data-container-id]").forEach(function (el) {
      var id = el.dataset.containerId;
      if (!id || seen[id] || String(ev.data).indexOf(id) < 0) return;
      seen[id] = true;
      document.body.dispatchEvent(new CustomEvent("container-changed-" + id, { detail: { data: ev.data } }));
    });
  }

  // The same for functions: `function_update` and `invocation_update` naming the function on
  // the page (`data-function-id`) become `function-changed-<id>` on <body>.
  function announceFunctionChanges(ev) {
    var seen = {};
    document.querySelectorAll("[data-function-id]").forEach(function (el) {
      var id = el.dataset.functionId;
      if (!id || seen[id] || String(ev.data).indexOf(id) < 0) return;
      seen[id] = true;
      document.body.dispatchEvent(new CustomEvent("function-changed-" + id, { detail: { data: ev.data } }));
    });
  }

  window.QuiltTickets = { get: getTicket };
  htmx.createEventSource = function (url) {
    var source = new TicketedEventSource(url);
    source.addEventListener("container_update", announceContainerChanges);
    source.addEventListener("function_update", announceFunctionChanges);
    source.addEventListener("invocation_update", announceFunctionChanges);
    return source;
  };
})();

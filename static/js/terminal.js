/* QuiltWeb terminal: wires xterm.js to /ws/terminal/attach (spec 2.8). Nothing else.
 *
 * Each connect passes a one-time ticket from window.QuiltTickets (static/js/events.js).
 * Binary frames carry PTY bytes both ways and are handed to xterm as bytes (it decodes UTF-8
 * across frame boundaries itself). Text frames are JSON control. After xterm has rendered a
 * chunk (its write callback) the byte count is acknowledged so the server can pace output.
 * Container output can neither write the clipboard (no OSC 52 handler) nor open links other
 * than http(s), and it cannot retitle the page. xterm.js and its fit addon arrive as plain
 * <script> tags before this one (templates/terminals/panel.html); htmx runs the scripts of a
 * swapped-in tab in order. Recordings play in asciinema-player (static/js/replay.js).
 * data-mode="watch" attaches read-only (2.14): no input or resize is sent and the terminal takes
 * the PTY's size from the `ready` and `size` frames. A `watchers` frame shows "watched by N".
 * Closed with 4000, the window says where the session went ("opened in another window",
 * "taken over by X") and shows its take-back form instead of saying it ended.
 */
(function () {
  "use strict";
  if (window.QuiltTerminal) { window.QuiltTerminal.scan(); return; }

  var ACK_EVERY = 32 * 1024;
  var SEND_CHUNK = 64 * 1024;
  var FINAL = { 4401: "you are signed out", 4403: "your role cannot open terminals", 4404: "the session does not exist",
    4409: "the container is not exec-ready", 4410: "the session has ended", 4429: "too many open terminal sessions",
    4408: "output was not acknowledged in time" };
  // 4000: another socket has the session now (another window of the owner's, or a takeover);
  // the session goes on, so this window says where it went and offers to take it back.
  var encoder = new TextEncoder();

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function theme() {
    return {
      background: cssVar("--term-bg", "#0e1217"), foreground: cssVar("--term-fg", "#e4e9f0"),
      cursor: cssVar("--term-cursor", "#86a2ff"), cursorAccent: cssVar("--term-bg", "#0e1217"),
      selectionBackground: cssVar("--term-selection", "rgba(134,162,255,.35)"),
    };
  }

  function safeLink(event, uri) {
    var url;
    try { url = new URL(uri); } catch (e) { return; }
    if (url.protocol !== "http:" && url.protocol !== "https:") return;
    if (window.confirm("Open this link from the terminal?\n\n" + url.href)) {
      var w = window.open(url.href, "_blank", "noopener,noreferrer");
      if (w) w.opener = null;
    }
  }

  function newTerminal(el) {
    var term = new window.Terminal({
      cursorBlink: true, fontFamily: cssVar("--mono", "monospace"), fontSize: 14, scrollback: 10000,
      theme: theme(), linkHandler: { activate: safeLink, allowNonHttpProtocols: false },
      allowProposedApi: false, macOptionIsMeta: true, rightClickSelectsWord: false,
    });
    var fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    // Output may not reach the clipboard: swallow OSC 52 explicitly (no clipboard addon is loaded).
    term.parser.registerOscHandler(52, function () { return true; });
    function retheme() { term.options.theme = theme(); }
    new MutationObserver(retheme)
      .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", retheme);
    try { fit.fit(); } catch (e) { /* not laid out yet */ }
    return { term: term, fit: fit };
  }

  function clipboardWiring(el, term) {
    // Selecting copies (like a desktop terminal); Ctrl+Shift+C copies too.
    term.onSelectionChange(function () {
      var text = term.getSelection();
      if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
    });
    term.attachCustomKeyEventHandler(function (ev) {
      if (ev.type === "keydown" && ev.ctrlKey && ev.shiftKey && (ev.code === "KeyC" || ev.code === "KeyV")) {
        if (ev.code === "KeyC") {
          var text = term.getSelection();
          if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
          ev.preventDefault();
        }
        return false; // Ctrl+Shift+V: let the browser's paste event reach xterm
      }
      return true;
    });
    el.addEventListener("contextmenu", function (ev) {
      if (!navigator.clipboard || !navigator.clipboard.readText) return;
      ev.preventDefault();
      navigator.clipboard.readText().then(function (text) { if (text) term.paste(text); term.focus(); })
        .catch(function () { /* permission refused: the keyboard shortcut still works */ });
    });
  }

  function mountLive(el) {
    var made = newTerminal(el), term = made.term, fit = made.fit;
    var statusEl = document.getElementById(el.dataset.statusId);
    var infoEl = document.getElementById(el.dataset.infoId);
    var endedEl = document.getElementById(el.dataset.endedId);
    var awayEl = document.getElementById(el.dataset.awayId);
    var watchersEl = document.getElementById(el.dataset.watchersId);
    // Watch mode (2.14) is read-only: no input, and the terminal takes the PTY's size.
    var watching = el.dataset.mode === "watch", takenBy = null;
    if (watching) term.options.disableStdin = true;
    var ws = null, ended = false, attempt = 0, received = 0, rendered = 0, acked = 0, ackTimer = null;
    var shell = "", sessionId = el.dataset.sessionId;

    function status(name, text) {
      if (!statusEl) return;
      statusEl.dataset.status = name;
      statusEl.textContent = text || name;
      statusEl.className = "badge term-status " + ({ connecting: "badge-info", live: "badge-ok",
        reconnecting: "badge-warn", away: "badge-warn", ended: "state-exited" }[name] || "badge-info");
      var dot = document.querySelector('.term-tab[aria-current="page"] .term-dot');
      if (dot) dot.className = "term-dot state-" + ({ live: "active", ended: "closed" }[name] || "detached");
    }
    function info() {
      if (infoEl) infoEl.innerHTML = "";
      if (!infoEl) return;
      infoEl.append(shell + " · " + term.cols + "×" + term.rows + " · ");
      var code = document.createElement("code"); code.textContent = sessionId; infoEl.append(code);
    }
    function away(message) {
      ended = true; // no retry: the other window has it until this one takes it back
      status("away", takenBy ? "taken over" : "in another window");
      if (endedEl) endedEl.hidden = true;
      var text = document.getElementById("term-away-text");
      if (text) text.textContent = message;
      if (awayEl) { awayEl.hidden = false; var b = awayEl.querySelector("button"); if (b) b.focus(); }
      term.write("\r\n\x1b[2m[" + message.replace(/[\x00-\x1f]/g, " ") + "]\x1b[0m\r\n");
      term.options.disableStdin = true;
    }
    function watchers(count) {
      if (!watchersEl) return;
      watchersEl.textContent = "watched by " + count;
      watchersEl.hidden = !(count > 0);
    }
    function end(message) {
      ended = true;
      status("ended");
      if (endedEl) { endedEl.textContent = message; endedEl.hidden = false; }
      term.write("\r\n\x1b[2m[" + message.replace(/[\x00-\x1f]/g, " ") + "]\x1b[0m\r\n");
      term.options.disableStdin = true;
    }
    function send(obj) { if (ws && ws.readyState === 1) ws.send(typeof obj === "string" ? obj : JSON.stringify(obj)); }
    function sendBytes(bytes) {
      if (!ws || ws.readyState !== 1) return;
      for (var i = 0; i < bytes.length; i += SEND_CHUNK) ws.send(bytes.subarray(i, i + SEND_CHUNK));
    }
    function ack() {
      ackTimer = null;
      if (rendered !== acked) { acked = rendered; send({ type: "ack", bytes: acked }); }
    }
    function sendSize() { if (!watching) send({ type: "resize", cols: term.cols, rows: term.rows }); info(); }
    function fitOrFollow(cols, rows) {
      if (!watching) { try { fit.fit(); } catch (e) { /* hidden */ } return; }
      if (cols && rows && (cols !== term.cols || rows !== term.rows)) term.resize(cols, rows);
    }

    function retry() {
      attempt += 1;
      status("reconnecting", "reconnecting (" + attempt + ")");
      setTimeout(connect, Math.min(10000, 250 * Math.pow(2, attempt)));
    }

    // Every (re)connect takes a fresh one-time ticket (single use, 60 s): the URL never holds a
    // credential, and a spent ticket is worthless. A server without the ticket route (404)
    // authenticates the handshake by the session cookie alone.
    function connect() {
      if (ended || !document.contains(el)) return;
      status(attempt ? "reconnecting" : "connecting");
      var tickets = window.QuiltTickets ? window.QuiltTickets.get("terminal") : Promise.resolve(null);
      tickets.then(open, function (err) {
        // Refused outright (signed out, role): the handshake without a ticket gets the server's
        // own close code and its message. Busy or unreachable: try again later.
        if (err.status && err.status < 500 && err.status !== 429) open(null);
        else retry();
      });
    }

    function open(ticket) {
      if (ended || !document.contains(el)) return;
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + el.dataset.wsPath +
        (received > 0 ? "&offset=" + received : "") + (ticket ? "&ticket=" + encodeURIComponent(ticket) : "");
      var sock = new WebSocket(url, ["terminal"]);
      sock.binaryType = "arraybuffer";
      ws = sock; rendered = 0; acked = 0;
      sock.onmessage = function (ev) {
        if (sock !== ws) return;
        if (typeof ev.data !== "string") {
          var bytes = new Uint8Array(ev.data);
          received += bytes.length;
          term.write(bytes, function () {
            if (sock !== ws) return;
            rendered += bytes.length;
            if (rendered - acked >= ACK_EVERY) ack();
            else if (!ackTimer) ackTimer = setTimeout(ack, 20);
          });
          return;
        }
        var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "ready") {
          attempt = 0; shell = msg.shell;
          if (endedEl && !ended) endedEl.hidden = true; // a note from a refused attempt is stale
          if (received === 0 || msg.replay_from < received) { term.reset(); }
          else if (msg.replay_from > received) { term.write("\r\n\x1b[2m[some output was lost while disconnected]\x1b[0m\r\n"); }
          received = msg.replay_from;
          send({ type: "ack", bytes: 0 }); // turn on flow control for this socket
          status("live", watching ? "watching" : "live");
          fitOrFollow(msg.cols, msg.rows);
          sendSize();
          term.focus();
        } else if (msg.type === "exit") {
          end("Session ended: " + (msg.reason || "closed") + (msg.code === null || msg.code === undefined ? "" : " (exit code " + msg.code + ")"));
        } else if (msg.type === "watchers") {
          watchers(msg.count);
        } else if (msg.type === "size") {
          fitOrFollow(msg.cols, msg.rows); info();
        } else if (msg.type === "error" && msg.code === "TAKEN_OVER") {
          takenBy = msg.by || null;
        } else if (msg.type === "error" && msg.code === "READ_ONLY") {
          return; // the page already says it is read-only
        } else if (msg.type === "error") {
          if (endedEl && !ended) {
            endedEl.textContent = msg.message.charAt(0).toUpperCase() + msg.message.slice(1);
            endedEl.hidden = false;
          }
        }
      };
      sock.onclose = function (ev) {
        if (sock !== ws) return;
        ws = null;
        if (ended) return;
        watchers(0);
        if (ev.code === 4000) {
          away(takenBy ? "Taken over by " + takenBy + "." : "This session was opened in another window.");
          return;
        }
        if (FINAL[ev.code]) {
          var text = FINAL[ev.code];
          if (endedEl && endedEl.textContent && !endedEl.hidden) text = endedEl.textContent;
          end(text.charAt(0).toUpperCase() + text.slice(1));
          return;
        }
        retry();
      };
    }

    // The key bar (touch and narrow screens): Esc, Tab and the arrows send what xterm sends for
    // those keys (arrows follow the application cursor mode a program such as readline set);
    // Ctrl is sticky: it turns the next character typed into its control byte (c -> 0x03).
    var keysEl = document.getElementById(el.dataset.keysId), ctrlButton = null, ctrlArmed = false;
    function armCtrl(on) {
      ctrlArmed = on;
      if (ctrlButton) ctrlButton.setAttribute("aria-pressed", on ? "true" : "false");
    }
    function keySequence(key) {
      var arrows = { up: "A", down: "B", right: "C", left: "D" };
      if (key === "esc") return "\x1b";
      if (key === "tab") return "\t";
      if (arrows[key]) return (term.modes.applicationCursorKeysMode ? "\x1bO" : "\x1b[") + arrows[key];
      return "";
    }
    function controlByte(ch) {
      if (ch === " " || ch === "@") return "\x00";
      var c = ch.toUpperCase().charCodeAt(0);
      return c >= 64 && c <= 95 ? String.fromCharCode(c - 64) : (ch === "?" ? "\x7f" : ch);
    }
    if (keysEl) {
      ctrlButton = keysEl.querySelector('[data-term-key="ctrl"]');
      // Pressing a key must not take the focus (and the phone's keyboard) from the terminal.
      keysEl.addEventListener("mousedown", function (ev) { if (ev.target.closest("[data-term-key]")) ev.preventDefault(); });
      keysEl.addEventListener("click", function (ev) {
        var b = ev.target.closest("[data-term-key]");
        if (!b || watching || ended) return;
        var key = b.dataset.termKey;
        if (key === "ctrl") { armCtrl(!ctrlArmed); term.focus(); return; }
        armCtrl(false);
        sendBytes(encoder.encode(keySequence(key)));
        term.focus();
      });
    }

    term.onData(function (text) {
      if (watching) return;
      if (ctrlArmed && text.length === 1) { text = controlByte(text); armCtrl(false); }
      sendBytes(encoder.encode(text));
    });
    term.onBinary(function (text) {
      if (watching) return;
      var bytes = new Uint8Array(text.length);
      for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 255;
      sendBytes(bytes);
    });
    term.onResize(function () { sendSize(); });
    clipboardWiring(el, term);
    var pending = false;
    new ResizeObserver(function () {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; if (!watching) { try { fit.fit(); } catch (e) { /* hidden */ } } });
    }).observe(el);
    window.addEventListener("online", function () { if (!ws && !ended) { attempt = 0; connect(); } });
    el.quiltTerminal = { term: term, close: function () { ended = true; if (ws) ws.close(1000); term.dispose(); } };
    connect();
  }

  function scan() {
    document.querySelectorAll(".term-app:not([data-mounted])").forEach(function (el) {
      el.dataset.mounted = "1";
      if (!window.Terminal || !window.FitAddon) { el.textContent = "The terminal could not load."; return; }
      mountLive(el);
    });
  }

  // Leaving the tab through htmx removes the element: detach its socket (the session stays).
  document.addEventListener("htmx:beforeCleanupElement", function (ev) {
    var t = ev.target && ev.target.querySelectorAll ? ev.target : null;
    if (!t) return;
    var els = t.classList && t.classList.contains("term-app") ? [t] : t.querySelectorAll(".term-app");
    Array.prototype.forEach.call(els, function (el) { if (el.quiltTerminal) el.quiltTerminal.close(); });
  });
  document.addEventListener("htmx:load", scan);
  window.QuiltTerminal = { scan: scan };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan); else scan();
})();

/* QuiltWeb page behaviour. The Content-Security-Policy allows no inline script, no on*
 * attributes and no eval (htmx runs with allowEval off), so every small behaviour a template
 * needs is a delegated listener here, keyed by a data-* attribute:
 *
 *   <form data-confirm="Delete x?">            asks in the confirmation <dialog> before submitting
 *   hx-confirm="Delete x?" (htmx)              asks in the same <dialog> before the request
 *   data-confirm-details="template-id"         (with either) shows that <template>'s content
 *                                              under the question
 *   <button data-copy="text">                  copies the text, then says "Copied"
 *   <button data-copy-from="input-id">         selects and copies that input's value
 *   <input data-select-on-focus>               selects its text when focused
 *   <a data-open-dialog="dialog-id">           opens that <dialog> instead of following the link
 *   <a data-remove-closest="form">             removes its closest <form> instead of following
 *   <a data-focus="element-id">                focuses that element instead of following
 *   <textarea data-submit-on-ctrl-enter>       Ctrl/Cmd+Enter submits its form
 *   <pre data-scroll-end>                      scrolled to the end whenever it is (re)loaded
 *   <span class="has-tip"> … <span role=tooltip> Escape hides the tooltip until focus leaves
 *
 * Menus are native popovers (`popover` + `popovertarget`) and confirmations native <dialog>s:
 * the browser closes them on Escape or a click outside and gives focus back, no code here.
 */
(function () {
  "use strict";
  var root = document.documentElement;

  // Theme toggle (theme.js applied the stored choice before first paint).
  function dark() { return root.dataset.theme === "dark" || (root.dataset.theme !== "light" && matchMedia("(prefers-color-scheme: dark)").matches); }
  document.addEventListener("click", function (e) {
    if (!e.target.closest || !e.target.closest("#theme-toggle")) return;
    var next = dark() ? "light" : "dark"; root.dataset.theme = next;
    try { localStorage.setItem("qw-theme", next); } catch (e2) { /* not remembered */ }
  });

  // The operations tray: by default it shows work in progress, failures and fresh successes;
  // older successes settle behind its toggle. The toggle collapses it (remembered across
  // pages) or opens it fully (this page only). The state lives on <html> so the tray's own
  // htmx refreshes keep it.
  try { if (localStorage.getItem("qw-tray") === "collapsed") root.dataset.tray = "collapsed"; } catch (e) { /* default */ }
  function trayShowsItems() {
    if (root.dataset.tray === "collapsed") return false;
    if (root.dataset.tray === "expanded") return true;
    return !!document.querySelector("#operations-tray .tray-item:not(.is-settled)");
  }
  function syncTray() {
    var b = document.querySelector("#operations-tray .tray-toggle");
    if (b) b.setAttribute("aria-expanded", trayShowsItems() ? "true" : "false");
  }
  document.addEventListener("click", function (e) {
    if (!e.target.closest || !e.target.closest(".tray-toggle")) return;
    var collapse = trayShowsItems();
    root.dataset.tray = collapse ? "collapsed" : "expanded";
    try { localStorage.setItem("qw-tray", collapse ? "collapsed" : "open"); } catch (e2) { /* this page only */ }
    syncTray();
  });
  document.addEventListener("htmx:afterSettle", syncTray);

  // Phones: the Menu button folds the navigation and search open and shut (CSS hides them
  // below 720px while aria-expanded is false); Escape shuts it and gives focus back.
  function navToggle() { return document.getElementById("nav-toggle"); }
  function setNav(open) {
    var b = navToggle(); if (!b) return;
    b.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("#nav-toggle");
    if (b) { setNav(b.getAttribute("aria-expanded") !== "true"); return; }
    var t = navToggle();
    if (t && t.getAttribute("aria-expanded") === "true" && !e.target.closest(".topbar")) setNav(false);
  });
  document.addEventListener("keydown", function (e) {
    var b = navToggle();
    if (e.key !== "Escape" || !b || b.getAttribute("aria-expanded") !== "true") return;
    if (!e.target.closest || !e.target.closest(".topbar")) return;
    setNav(false); b.focus();
  });

  // Phones: list rows become cards (app.css, table.list-table) and each cell shows its
  // column's name from data-label, copied here from the header so templates need not repeat it.
  function labelCells(scope) {
    var tables = scope.matches && scope.matches("table.list-table") ? [scope] : scope.querySelectorAll("table.list-table");
    Array.prototype.forEach.call(tables, function (table) {
      var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        var c = th.cloneNode(true);
        Array.prototype.forEach.call(c.querySelectorAll("[aria-hidden=true], .visually-hidden"), function (x) { x.remove(); });
        return c.textContent.replace(/\s+/g, " ").trim();
      });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (names[i] && !td.hasAttribute("data-label")) td.setAttribute("data-label", names[i]);
        });
      });
    });
  }
  document.addEventListener("htmx:load", function (e) { if (e.target && e.target.querySelectorAll) labelCells(e.target); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { labelCells(document); });
  else labelCells(document);

  // Phones: the readiness checks fold behind their button (containers.css). The server opens
  // them when something is not ready; a reader's own choice holds across live refreshes until
  // the readiness itself changes.
  var readinessChoice = null;
  function readinessKey(panel) { return (panel.closest("[data-container-id]") || panel).getAttribute("data-container-id") + "|" + panel.getAttribute("data-ready"); }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-readiness-toggle]");
    if (!b) return;
    var open = b.getAttribute("aria-expanded") !== "true";
    b.setAttribute("aria-expanded", open ? "true" : "false");
    var panel = b.closest("#readiness");
    if (panel) readinessChoice = { key: readinessKey(panel), open: open };
  });
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("readiness"), b = panel && panel.querySelector("[data-readiness-toggle]");
    if (b && readinessChoice && readinessChoice.key === readinessKey(panel)) b.setAttribute("aria-expanded", readinessChoice.open ? "true" : "false");
  });

  // "/" focuses the search box unless the user is typing somewhere.
  document.addEventListener("keydown", function (e) {
    var t = e.target, q = document.getElementById("resolve-q");
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || !q) return;
    if (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
    e.preventDefault(); if (!q.offsetParent) setNav(true); q.focus(); q.select();
  });

  // --- data-* hooks ---------------------------------------------------------------------

  // Confirmations ask in base.html's <dialog id="confirm-dialog">; its "yes" button is named
  // after the button that asked ("Revoke", "Delete"). Escape, Cancel or a click outside is a no.
  // Without <dialog> the browser's confirm() asks.
  function yesLabel(el, submitter) {
    var b = submitter || (el && el.matches && el.matches("form") ? el.querySelector("button[type=submit], button:not([type])") : el);
    var text = b && b.textContent ? b.textContent.replace(/\s+/g, " ").trim() : "";
    return text && text.length <= 24 ? text : "Confirm";
  }
  function ask(question, label, yes, el) {
    var d = document.getElementById("confirm-dialog");
    if (!d || !d.showModal) { if (window.confirm(question)) yes(); return; }
    document.getElementById("confirm-dialog-question").textContent = question;
    // The details are server-rendered markup in a <template>; this only copies them in.
    var slot = document.getElementById("confirm-dialog-details");
    var more = el && el.dataset && el.dataset.confirmDetails ? document.getElementById(el.dataset.confirmDetails) : null;
    if (slot) { slot.replaceChildren(); if (more && more.content) slot.appendChild(more.content.cloneNode(true)); }
    document.getElementById("confirm-dialog-ok").textContent = label;
    d.returnValue = "";
    d.addEventListener("close", function () { if (d.returnValue === "confirm") yes(); }, { once: true });
    d.showModal();
  }
  document.addEventListener("submit", function (e) {
    var form = e.target, submitter = e.submitter;
    if (!form.dataset || !form.dataset.confirm) return;
    if (form.dataset.confirmed) { delete form.dataset.confirmed; return; } // asked already
    e.preventDefault();
    ask(form.dataset.confirm, yesLabel(form, submitter), function () {
      form.dataset.confirmed = "1";
      form.requestSubmit(submitter && submitter.form === form ? submitter : null);
    }, form);
  });
  document.addEventListener("htmx:confirm", function (e) {
    var d = e.detail;
    if (!d.question) return; // no hx-confirm: htmx goes ahead
    e.preventDefault();
    var trigger = d.triggeringEvent;
    ask(d.question, yesLabel(d.elt, trigger && trigger.submitter), function () { d.issueRequest(true); }, d.elt);
  });

  function copied(btn) { btn.textContent = "Copied"; }

  document.addEventListener("click", function (e) {
    var el = e.target.closest ? e.target.closest("[data-copy], [data-copy-from], [data-open-dialog], [data-remove-closest], [data-focus]") : null;
    if (!el) return;
    var ds = el.dataset;
    if (ds.copy !== undefined) {
      if (navigator.clipboard) navigator.clipboard.writeText(ds.copy).catch(function () { /* denied */ });
      copied(el);
    } else if (ds.copyFrom) {
      var input = document.getElementById(ds.copyFrom);
      if (!input) return;
      input.select();
      // The Clipboard API needs a secure context; plain-http loopback falls back to execCommand.
      (navigator.clipboard ? navigator.clipboard.writeText(input.value) : Promise.reject())
        .catch(function () { document.execCommand("copy"); });
      copied(el);
    } else if (ds.openDialog) {
      var dialog = document.getElementById(ds.openDialog);
      if (!dialog || !dialog.showModal) return; // no <dialog> support: follow the link
      e.preventDefault(); dialog.showModal();
    } else if (ds.removeClosest) {
      var gone = el.closest(ds.removeClosest);
      if (!gone) return;
      e.preventDefault(); gone.remove();
    } else if (ds.focus) {
      var target = document.getElementById(ds.focus);
      if (!target) return;
      e.preventDefault(); target.focus();
    }
  });

  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("input[data-select-on-focus]")) e.target.select();
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey) || !t.matches || !t.matches("[data-submit-on-ctrl-enter]") || !t.form) return;
    e.preventDefault(); t.form.requestSubmit();
  });

  // A disabled button's reason (.has-tip .tip, shown on hover and focus) hides on Escape.
  document.addEventListener("keydown", function (e) {
    var tip = e.key === "Escape" && e.target.closest ? e.target.closest(".has-tip") : null;
    if (tip) tip.classList.add("tip-dismissed");
  });
  document.addEventListener("focusout", function (e) {
    var tip = e.target.closest ? e.target.closest(".has-tip") : null;
    if (tip) tip.classList.remove("tip-dismissed");
  });

  // Log views open (and refresh, while following) at their newest line.
  function scrollToEnd(scope) {
    var els = scope.querySelectorAll ? scope.querySelectorAll("[data-scroll-end]") : [];
    Array.prototype.forEach.call(els, function (el) { el.scrollTop = el.scrollHeight; });
    if (scope.matches && scope.matches("[data-scroll-end]")) scope.scrollTop = scope.scrollHeight;
  }
  document.addEventListener("htmx:load", function (e) { scrollToEnd(e.target); });

  function start() { syncTray(); scrollToEnd(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();

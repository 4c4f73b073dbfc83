/* The container list's selection for bulk actions (templates/containers/list.html).
 *
 *   <form data-bulk-form>                 the bulk bar; its verb buttons post the selection
 *   <input data-bulk-row form=… value=id> one row's checkbox (data-name: the container's name)
 *   <input data-bulk-all>                 selects or clears every row of this page
 *   <span data-bulk-count>                says what is selected
 *   <button data-bulk-ask=verb hx-confirm> a verb that asks first: its question names the count
 *
 * Shift+click (or Shift+Space) on a row selects or clears the range from the last row touched.
 * The rows refresh live (htmx swaps #container-rows); the selection is kept here by id and put
 * back on the fresh rows, and forgets rows that are gone. The markup is the server's; this only
 * ticks boxes and sets text and attributes.
 */
(function () {
  "use strict";
  var selected = new Set();
  var anchor = null; // id of the last row clicked without Shift
  var shiftSpace = false;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("input[data-bulk-row]")); }
  function form() { return document.querySelector("form[data-bulk-form]"); }

  function names() {
    return rows().filter(function (r) { return r.checked; }).map(function (r) { return r.dataset.name || r.value.slice(0, 12); });
  }

  function listed(all) {
    var shown = all.slice(0, 5).join(", ");
    return all.length > 5 ? shown + " and " + (all.length - 5) + " more" : shown;
  }

  var QUESTIONS = {
    kill: function (n, who) { return "Kill " + n + " with SIGKILL (" + who + ")? Their processes end at once; unsaved work is lost."; },
    delete: function (n, who) { return "Delete " + n + " (" + who + ")? They are force-removed even if running and their terminals close. Volumes and snapshots stay."; },
  };

  function sync() {
    var all = rows();
    var present = new Set(all.map(function (r) { return r.value; }));
    selected.forEach(function (id) { if (!present.has(id)) selected.delete(id); });
    all.forEach(function (r) { r.checked = selected.has(r.value); });
    var head = document.querySelector("input[data-bulk-all]");
    if (head) {
      head.checked = all.length > 0 && selected.size === all.length;
      head.indeterminate = selected.size > 0 && selected.size < all.length;
    }
    var f = form();
    if (!f) return;
    var count = selected.size;
    var who = listed(names());
    var noun = count === 1 ? "1 container" : count + " containers";
    var label = f.querySelector("[data-bulk-count]");
    if (label) label.textContent = count ? noun + " selected: " + who : "Select containers to act on several at once.";
    f.classList.toggle("has-selection", count > 0);
    Array.prototype.forEach.call(f.querySelectorAll("button[name=verb]"), function (b) {
      b.disabled = count === 0;
      var ask = QUESTIONS[b.dataset.bulkAsk];
      if (ask && count) b.setAttribute("hx-confirm", ask(noun, who));
    });
  }

  function setRange(from, to, on) {
    var all = rows();
    var a = all.findIndex(function (r) { return r.value === from; });
    var b = all.findIndex(function (r) { return r.value === to; });
    if (a < 0 || b < 0) return false;
    all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (r) {
      if (on) selected.add(r.value); else selected.delete(r.value);
    });
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.key === " " && e.target.matches && e.target.matches("input[data-bulk-row]")) shiftSpace = e.shiftKey;
  });

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!t.matches) return;
    if (t.matches("input[data-bulk-all]")) {
      rows().forEach(function (r) { if (t.checked) selected.add(r.value); else selected.delete(r.value); });
      anchor = null;
      sync();
    } else if (t.matches("input[data-bulk-row]")) {
      var range = (e.shiftKey || shiftSpace) && anchor !== null && anchor !== t.value;
      shiftSpace = false;
      if (!(range && setRange(anchor, t.value, t.checked))) {
        if (t.checked) selected.add(t.value); else selected.delete(t.value);
      }
      if (!range) anchor = t.value;
      sync();
    }
  });

  // Fresh rows (a filter, a live refresh, a page of the list): put the selection back on them.
  document.addEventListener("htmx:afterSettle", sync);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", sync); else sync();
})();

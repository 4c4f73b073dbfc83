/* Volume uploads (templates/volumes/detail.html): several files at once, from the file input or
 * dropped on the box, each sent on its own request so each shows its progress and its result.
 *
 *   <form data-upload-form data-results="list-id">   the upload form (it also works without this
 *                                                     script: it posts every chosen file at once)
 *   <div data-drop-zone>                              inside it: where files may be dropped
 *   <template id="upload-row-template">               a file's row while it uploads
 *
 * The server answers each file with its result row (X-Upload-Row), which replaces the progress
 * row; no markup is made here. When the last file is done the file browser refreshes itself
 * (`volume-files-changed`).
 */
(function () {
  "use strict";

  function rowFor(form, file) {
    var list = document.getElementById(form.dataset.results);
    var template = document.getElementById("upload-row-template");
    if (!list || !template) return null;
    var row = template.content.firstElementChild.cloneNode(true);
    row.querySelector(".upload-name").textContent = file.name;
    list.appendChild(row);
    return row;
  }

  function progress(row, percent, words) {
    var bar = row.querySelector("[role=progressbar]");
    if (bar) {
      bar.setAttribute("aria-valuenow", String(percent));
      bar.firstElementChild.style.width = percent + "%";
    }
    row.querySelector(".upload-status").textContent = words;
  }

  function failed(row, words) {
    row.classList.remove("is-pending");
    row.classList.add("is-failed");
    var bar = row.querySelector("[role=progressbar]");
    if (bar) bar.remove();
    var status = row.querySelector(".upload-status");
    status.textContent = words;
    status.classList.add("field-error");
  }

  function send(form, file, row) {
    return new Promise(function (done) {
      var data = new FormData();
      data.append("path", form.elements.path.value);
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", form.elements.csrfmiddlewaretoken.value);
      xhr.setRequestHeader("X-Upload-Row", "1");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var pct = Math.round((e.loaded / e.total) * 100);
          progress(row, pct, pct < 100 ? pct + " %" : "writing…");
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.getResponseHeader("X-Upload-Row")) {
          row.outerHTML = xhr.responseText; // the server's row for this file
          done(xhr.status < 300);
        } else {
          failed(row, "failed: the server answered " + xhr.status);
          done(false);
        }
      });
      xhr.addEventListener("error", function () { failed(row, "failed: the connection dropped"); done(false); });
      progress(row, 0, "uploading…");
      xhr.send(data);
    });
  }

  function uploadAll(form, files) {
    var list = Array.prototype.slice.call(files);
    if (!list.length) return;
    var rows = list.map(function (f) { return rowFor(form, f); });
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    var chain = Promise.resolve(false);
    list.forEach(function (file, i) {
      chain = chain.then(function (anyOk) {
        return send(form, file, rows[i]).then(function (ok) { return anyOk || ok; });
      });
    });
    chain.then(function (anyOk) {
      if (button) button.disabled = false;
      form.reset();
      if (anyOk) document.body.dispatchEvent(new CustomEvent("volume-files-changed", { bubbles: true }));
    });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("[data-upload-form]") || !window.FormData) return;
    e.preventDefault();
    uploadAll(form, form.elements.file.files);
  });

  function zone(e) { return e.target.closest ? e.target.closest("[data-drop-zone]") : null; }
  function carriesFiles(e) { return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") !== -1; }
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (e) {
      var z = zone(e);
      if (!z || !carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      z.classList.add("is-dragover");
    });
  });
  document.addEventListener("dragleave", function (e) {
    var z = zone(e);
    if (z && !z.contains(e.relatedTarget)) z.classList.remove("is-dragover");
  });
  document.addEventListener("drop", function (e) {
    var z = zone(e);
    if (!z || !carriesFiles(e)) return;
    e.preventDefault();
    z.classList.remove("is-dragover");
    uploadAll(z.closest("form"), e.dataTransfer.files);
  });
})();

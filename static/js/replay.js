/* QuiltWeb recording replay: asciinema-player plays the session's asciicast. Nothing else.
 *
 * asciinema-player (npm, served from static/vendor/asciinema-player/) arrives as a plain
 * <script> tag before this one (templates/terminals/replay.html). It fetches the recording
 * itself, compresses pauses longer than a second (nobody wants to watch an idle shell) and
 * draws the terminal; this file only starts it and mirrors its state in the status badge.
 * The player runs its terminal emulator as WebAssembly, which the replay page's policy
 * allows ('wasm-unsafe-eval', apps/core/csp.py); JavaScript eval stays forbidden.
 */
(function () {
  "use strict";

  function mount(el) {
    var statusEl = document.getElementById(el.dataset.statusId);
    function status(text, cls) {
      if (!statusEl) return;
      statusEl.textContent = text;
      statusEl.className = "badge term-status " + cls;
    }
    if (!window.AsciinemaPlayer) { status("could not load the player", "badge-warn"); return; }
    var player = window.AsciinemaPlayer.create(el.dataset.castUrl, el, {
      autoPlay: true, idleTimeLimit: 1, fit: "width", theme: "quilt", controls: true,
    });
    player.addEventListener("playing", function () { status("playing", "badge-ok"); });
    player.addEventListener("pause", function () { status("paused", "badge-info"); });
    player.addEventListener("ended", function () { status("finished", "state-exited"); });
    player.addEventListener("error", function () { status("could not load the recording", "badge-warn"); });
    el.quiltPlayer = player;
  }

  function scan() {
    document.querySelectorAll(".term-replay[data-cast-url]:not([data-mounted])").forEach(function (el) {
      el.dataset.mounted = "1";
      mount(el);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan); else scan();
})();

/* Loaded without defer in <head>: apply the stored colour theme before first paint, so a dark
 * page never flashes light. Everything else waits for app.js. */
try {
  var t = localStorage.getItem("qw-theme");
  if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
} catch (e) { /* storage blocked: the system theme applies */ }

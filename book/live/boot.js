// The live figures' first script: a classic script, so that it runs even where modules cannot load
// (a page opened from file://), checks that this browser can run the model, then loads lds-live.js.
// A chapter embeds a live figure with:
//   <div class="lds-live" data-figure="slots"></div>
//   <script src="../_static/live/boot.js"></script>
(function () {
  if (window.ldsLive) return;  // one page, one model: several figures share it
  var script = document.currentScript;
  // (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): valid only where WebAssembly SIMD is
  var SIMD = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

  function refuse(kind, html) {
    var fail = Promise.reject(new Error(kind + ": " + html.replace(/<[^>]+>/g, "")));
    fail.catch(function () {});  // the message is on the page; no unhandled rejection in the console
    window.ldsLive = { ready: fail, unavailable: kind };
    function show() {
      var figures = document.querySelectorAll(".lds-live");
      for (var i = 0; i < figures.length; i++) {
        figures[i].innerHTML = '<p class="lds-live-message" style="border-left:4px solid #c60;padding:.5em 1em;background:#fff6ee">' +
          "<strong>The live figure cannot run here.</strong> " + html + "</p>";
      }
    }
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show); else show();
  }

  if (location.protocol === "file:") {
    return refuse("file", "This page was opened as a file, and browsers do not load WebAssembly from files. " +
      "Serve the book instead, from the folder that holds it: <code>python -m http.server -d _build/html</code>, " +
      "then open <a href=\"http://localhost:8000/book/live.html\">http://localhost:8000/book/live.html</a>. No internet is needed.");
  }
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(SIMD)) {
    return refuse("simd", "This browser has no WebAssembly SIMD, which the model's runtime needs. " +
      "Any current Chrome, Edge, Firefox or Safari (16.4 or later) has it.");
  }
  if (!window.Worker || !window.DecompressionStream) {
    return refuse("browser", "This browser is too old for the live figures (they need Web Workers and DecompressionStream).");
  }
  if (navigator.deviceMemory && navigator.deviceMemory < 1) {
    return refuse("memory", "This device reports less than 1 GB of memory; the model needs about 300 MB free. " +
      "Try a laptop or desktop browser.");
  }
  // window.ldsLive exists as soon as this script ran; its calls wait for the model (lds-live.js).
  var api = import(new URL("lds-live.js", script.src).href).then(function (m) { return m.ldsLive; });
  api.catch(function (err) { refuse("load", "The live figure's scripts did not load (" + err + ")."); });
  window.ldsLive = {
    ready: api.then(function (a) { return a.ready; }),
    tokenize: function (prompt) { return api.then(function (a) { return a.tokenize(prompt); }); },
    generate: function (params, options) { return api.then(function (a) { return a.generate(params, options); }); },
  };
})();

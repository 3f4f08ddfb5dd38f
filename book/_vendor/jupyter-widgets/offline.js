// Loaded between require.js and @jupyter-widgets/html-manager's embed-amd.js (see _config.yml).
(function () {
  // 1. The bundle finds its fonts next to the URL require.js gives its modules; without paths
  //    those URLs are relative to the page (404). Point every @jupyter-widgets module here.
  var dist = document.currentScript.src.replace(/[^\/]*$/, "") + "html-manager";
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": dist, "@jupyter-widgets": dist } });
  // 2. The bundle typesets widget labels with MathJax 2's MathJax.Hub.Queue; the book loads
  //    MathJax 3, which has no Hub. Queue those elements and typeset them with MathJax 3.
  var pending = [];
  var hub = { Queue: function (job) { pending.push(job && job[2]); flush(); } };
  function flush() {
    var mj = window.MathJax;
    if (mj && mj.typesetPromise && mj.startup && mj.startup.document) {
      var elements = pending.splice(0).filter(Boolean);
      if (elements.length) { mj.typesetPromise(elements); }
    }
  }
  if (window.MathJax && !window.MathJax.version) {  // MathJax 3's configuration, before it loads
    var startup = window.MathJax.startup = window.MathJax.startup || {};
    var ready = startup.ready;
    startup.ready = function () {
      if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
      window.MathJax.Hub = hub;
      window.MathJax.startup.promise.then(flush);
    };
    window.MathJax.Hub = hub;  // for widgets rendered before MathJax has loaded
  }
})();

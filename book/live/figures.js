// The live figures: each <div class="lds-live" data-figure="..."> on a page becomes one of these.
//
//   generate   prompt, seed, steps, guidance -> the image (the page "Run it in your browser")
//   slots      chapter 5: the reader's prompt in the 77 slots
//   wordmaps   chapter 6: each word's cross-attention map over the image (DAAM's aggregation, as lds)
//   denoising  chapter 7: step by step, the noisy latents and the predicted clean image, under a slider
//   guidance   chapter 8: the guidance dial from 0 to 25, and one seed under the three conventions
// Settings come from the page's URL (?prompt=...&seed=...&steps=...&guidance=...), so a link shares them.

import { CONVENTIONS } from "./guidance.js";

const STYLE = `
.lds-live{border:1px solid #ccd;border-radius:6px;padding:.8em 1em;margin:1em 0;font-size:.92em}
.lds-live .row{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.3em 0}
.lds-live label{display:flex;gap:.3em;align-items:center}
.lds-live textarea{width:100%;min-height:2.6em;font:inherit}
.lds-live input[type=number]{width:6em}
.lds-live input:invalid,.lds-live textarea:invalid{outline:2px solid #c33}
.lds-live canvas{image-rendering:pixelated;border:1px solid #ddd;background:#fff}
.lds-live .note{color:#555;font-size:.9em;margin:.2em 0}
.lds-live .error{color:#a00}
.lds-live .slots{display:grid;grid-template-columns:repeat(auto-fill,minmax(6.2em,1fr));gap:2px;margin-top:.4em}
.lds-live .slot{border:1px solid #ccd;padding:2px 4px;font-family:monospace;font-size:.8em;overflow:hidden;white-space:nowrap}
.lds-live .slot.start,.lds-live .slot.end{background:#e8eefc}.lds-live .slot.content{background:#fff6d6}
.lds-live .slot.padding{background:#f2f2f2;color:#888}
.lds-live .tiles{display:flex;flex-wrap:wrap;gap:.6em}.lds-live figure{margin:0;text-align:center;font-size:.8em}
.lds-live progress{width:12em}
`;

const LIMITS = { seed: [0, 4294967295], steps: [1, 1000], guidance: [-1000, 1000] };
const DEFAULTS = { prompt: "grinning face", seed: 0, steps: 25, guidance: 7.5 };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function urlSettings() {
  const q = new URLSearchParams(location.search);
  const out = { ...DEFAULTS };
  if (q.has("prompt")) out.prompt = q.get("prompt");
  for (const k of ["seed", "steps", "guidance"]) if (q.has(k) && q.get(k) !== "") out[k] = Number(q.get(k));
  return out;
}

// The controls a figure needs; `read()` returns the settings, or null (and says why) when one is out of range.
function controls(fig, want, onRun) {
  const s = urlSettings();
  const form = el("form", { class: "controls", novalidate: "" });  // our own message, not the browser's bubble
  const inputs = {};
  if (want.includes("prompt")) {
    inputs.prompt = el("textarea", { maxlength: "100000", "aria-label": "prompt", dir: "auto" });
    inputs.prompt.value = s.prompt;
    form.append(el("label", { style: "display:block" }, "Prompt ", inputs.prompt));
  }
  const row = el("div", { class: "row" });
  for (const k of ["seed", "steps", "guidance"]) {
    if (!want.includes(k)) continue;
    const [lo, hi] = LIMITS[k];
    inputs[k] = el("input", { type: "number", min: lo, max: hi, step: k === "guidance" ? "any" : "1", required: "", "aria-label": k });
    inputs[k].value = s[k];
    row.append(el("label", {}, k, inputs[k]));
  }
  const run = el("button", { type: "submit", text: "Generate" });
  const cancel = el("button", { type: "button", text: "Cancel", disabled: "" });
  const bar = el("progress", { max: "1", value: "0" });
  const status = el("span", { class: "note" });
  row.append(run, cancel, bar, status);
  form.append(row);
  fig.append(form);
  const read = () => {
    for (const [k, input] of Object.entries(inputs)) {
      if (!input.checkValidity()) {
        status.textContent = k === "prompt" ? "The prompt is too long." :
          `${k} must be ${k === "guidance" ? "a number" : "a whole number"} from ${LIMITS[k][0]} to ${LIMITS[k][1]}; nothing was sent to the model.`;
        status.className = "note error";
        return null;
      }
    }
    status.className = "note";
    const out = {};
    for (const [k, input] of Object.entries(inputs)) out[k] = k === "prompt" ? input.value : Number(input.value);
    return { ...DEFAULTS, ...out };
  };
  let controller = null;
  const busy = (on) => {
    run.disabled = on;
    if (on) cancel.removeAttribute("disabled"); else cancel.setAttribute("disabled", "");
  };
  cancel.onclick = () => controller && controller.abort();
  form.onsubmit = async (event) => {
    event.preventDefault();
    const settings = read();
    if (!settings) return;
    controller = new AbortController();
    busy(true);
    bar.value = 0;
    status.textContent = "running…";
    try {
      await onRun(settings, {
        signal: controller.signal,
        onProgress: (p) => { bar.value = (p.i + 1) / p.steps; status.textContent = `step ${p.i + 1} of ${p.steps}`; },
        status: (text) => { status.textContent = text; },
      });
      shareLink(settings);
    } catch (err) {
      status.textContent = err.kind === "cancelled" ? "cancelled." : `error: ${err.message}`;
      status.className = err.kind === "cancelled" ? "note" : "note error";
    } finally {
      busy(false);
    }
  };
  return { inputs, read, submit: () => form.requestSubmit(), status };
}

function shareLink(settings) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(settings)) q.set(k, String(v));
  history.replaceState(null, "", `${location.pathname}?${q}${location.hash}`);
}

function canvasOf(rgba, width, height, scale = 6) {
  const c = el("canvas", { width, height });
  c.style.width = `${width * scale}px`;
  c.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
  return c;
}

function notesOf(result) {
  const lines = [...result.notes];
  if (result.params.guidance === 0) lines.push("guidance 0: the unconditional image, whatever the prompt");
  return lines.map((n) => el("p", { class: "note", text: n }));
}

const caption = (r) => `“${r.params.prompt}”, seed ${r.params.seed}, ${r.params.steps} steps, guidance ${r.params.guidance} · ${Math.round(r.ms)} ms in this browser`;

// ------------------------------------------------------------------------------------------------

function generateFigure(fig, live) {
  const out = el("div");
  controls(fig, ["prompt", "seed", "steps", "guidance"], async (s, opts) => {
    const r = await live.generate(s, opts);
    out.replaceChildren(canvasOf(r.rgba, r.width, r.height, 8), el("p", { class: "note", text: caption(r) }), ...notesOf(r));
    opts.status("done.");
  });
  fig.append(out);
}

function slotsFigure(fig, live) {
  const c = controls(fig, ["prompt"], async (s, opts) => { await show(s.prompt); opts.status(""); });
  c.inputs.prompt.addEventListener("input", () => show(c.inputs.prompt.value));
  const out = el("div");
  fig.append(out);
  const show = async (prompt) => {
    const t = await live.tokenize(prompt);
    const grid = el("div", { class: "slots" });
    t.ids.forEach((id, i) => grid.append(el("div", { class: `slot ${t.kinds[i]}`, title: `slot ${i}: id ${id} (${t.kinds[i]})`, text: `${i} ${t.tokens[i]}` })));
    out.replaceChildren(el("p", { class: "note", text: `${t.nContent} content token(s) in 75 places, then the end token and ${77 - t.nContent - 2} padding slot(s).` }),
      grid, ...t.notes.map((n) => el("p", { class: "note", text: n })));
  };
  live.ready.then(() => show(c.inputs.prompt.value));
}

// Each slot's map scaled to [0, 1] (AttentionRecord.normalized_maps), drawn over the image.
function overlay(rgba, width, height, map, h, w, scale = 4) {
  const base = canvasOf(rgba, width, height, scale);
  const heat = el("canvas", { width: w, height: h });
  let lo = Infinity, hi = -Infinity;
  for (const v of map) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const img = new ImageData(w, h);
  map.forEach((v, p) => {
    const x = (v - lo) / Math.max(hi - lo, 1e-12);  // inferno-like: black, purple, orange, yellow
    img.data.set([255 * Math.min(1, 1.6 * x), 255 * Math.max(0, 1.5 * x - 0.5), 255 * Math.max(0, Math.sin(Math.PI * x) * 0.7), 153], 4 * p);
  });
  heat.getContext("2d").putImageData(img, 0, 0);
  const ctx = base.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(heat, 0, 0, width, height);
  return base;
}

function wordmapsFigure(fig, live) {
  const out = el("div");
  controls(fig, ["prompt", "seed", "steps", "guidance"], async (s, opts) => {
    const r = await live.generate(s, { ...opts, record: { maps: true } });
    const [, h, w] = r.mapsShape;
    const total = new Array(77).fill(0);
    r.shares.forEach((row) => row.forEach((v, k) => { total[k] += v; }));
    const sum = total.reduce((a, b) => a + b, 0);
    const tiles = el("div", { class: "tiles" }, el("figure", {}, canvasOf(r.rgba, r.width, r.height, 4), el("figcaption", { text: "generated" })));
    r.kinds.forEach((kind, slot) => {
      if (kind !== "content") return;
      const map = r.maps.subarray(slot * h * w, (slot + 1) * h * w);
      tiles.append(el("figure", {}, overlay(r.rgba, r.width, r.height, map, h, w),
        el("figcaption", { text: `${slot}: ${r.tokens[slot]} ${(100 * total[slot] / sum).toFixed(1)}%` })));
    });
    out.replaceChildren(tiles, el("p", { class: "note", text: `${caption(r)}. Maps: DAAM's aggregation of the U-Net's cross-attention, as chapter 6 computes it; the share is each slot's part of all attention.` }), ...notesOf(r));
    opts.status("done.");
  });
  fig.append(out);
}

function latentTiles(latents, [c, h, w], scale = 6) {  // each latent channel in grey, scaled to its own range
  const tiles = [];
  for (let ch = 0; ch < c; ch++) {
    const plane = latents.subarray(ch * h * w, (ch + 1) * h * w);
    let lo = Infinity, hi = -Infinity;
    for (const v of plane) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const rgba = new Uint8ClampedArray(4 * h * w);
    plane.forEach((v, p) => { const g = 255 * (v - lo) / Math.max(hi - lo, 1e-12); rgba.set([g, g, g, 255], 4 * p); });
    tiles.push(canvasOf(rgba, w, h, scale));
  }
  return tiles;
}

function denoisingFigure(fig, live) {
  const out = el("div");
  controls(fig, ["prompt", "seed", "steps", "guidance"], async (s, opts) => {
    const r = await live.generate(s, { ...opts, record: { steps: true } });
    const slider = el("input", { type: "range", min: "0", max: String(r.trace.length - 1), value: "0", step: "1", "aria-label": "step" });
    const label = el("span", { class: "note" });
    const view = el("div", { class: "tiles" });
    const draw = () => {
      const st = r.trace[Number(slider.value)];
      label.textContent = `step ${st.i + 1} of ${r.trace.length}, timestep ${st.t}`;
      view.replaceChildren(
        el("figure", {}, el("div", {}, ...latentTiles(st.latentsIn, r.latentShape, 5)), el("figcaption", { text: "the noisy latents x_t (4 channels)" })),
        el("figure", {}, canvasOf(st.predOriginalImage, r.width, r.height, 5), el("figcaption", { text: "predicted clean image x̂₀, decoded" })));
    };
    slider.oninput = draw;
    draw();
    out.replaceChildren(el("div", { class: "row" }, slider, label), view,
      el("figure", {}, canvasOf(r.rgba, r.width, r.height, 5), el("figcaption", { text: "final image" })),
      el("p", { class: "note", text: caption(r) }), ...notesOf(r));
    opts.status("done.");
  });
  fig.append(out);
}

function guidanceFigure(fig, live) {
  const c = controls(fig, ["prompt", "seed", "steps"], async (s, opts) => {
    const dial = Number(range.value);
    const runs = [];
    for (const conv of CONVENTIONS) {
      opts.status(`${conv.name}…`);
      const r = await live.generate({ ...s, guidance: conv.scale(dial) }, opts);
      runs.push(el("figure", {}, canvasOf(r.rgba, r.width, r.height, 5),
        el("figcaption", { text: `${conv.name}: ${conv.formula}; "${dial}" computes lds scale ${conv.scale(dial)}` })));
    }
    out.replaceChildren(el("div", { class: "tiles" }, ...runs),
      el("p", { class: "note", text: `The same prompt and seed (${s.seed}); only what the dial's number means differs. Guidance 0 in lds's convention is the unconditional image.` }));
    opts.status("done.");
  });
  const range = el("input", { type: "range", min: "0", max: "25", step: "0.5", value: String(Math.min(25, Math.max(0, urlSettings().guidance))), "aria-label": "guidance" });
  const shown = el("span", { text: `dial: ${range.value}` });
  range.oninput = () => { shown.textContent = `dial: ${range.value}`; };
  range.onchange = () => c.submit();
  const out = el("div");
  fig.append(el("div", { class: "row" }, el("label", {}, "guidance dial 0–25 ", range), shown), out);
}

const FIGURES = { generate: generateFigure, slots: slotsFigure, wordmaps: wordmapsFigure, denoising: denoisingFigure, guidance: guidanceFigure };

export function mountAll(live) {
  document.head.append(el("style", { text: STYLE }));
  for (const fig of document.querySelectorAll(".lds-live")) {
    const make = FIGURES[fig.dataset.figure];
    fig.replaceChildren(el("p", { class: "note", text: "Loading lds-mini into this page (about 37 MB, once)…" }));
    if (!make) {
      fig.replaceChildren(el("p", { class: "note error", text: `unknown live figure ${fig.dataset.figure}; one of ${Object.keys(FIGURES).join(", ")}` }));
      continue;
    }
    live.ready.then(({ model, loadMs }) => {
      fig.replaceChildren(el("p", { class: "note", text: `Live: ${model.name}, the same model and weights as the book's figures, running in this browser (loaded in ${(loadMs / 1000).toFixed(1)} s).` }));
      make(fig, live);
    }, (err) => {
      fig.replaceChildren(el("p", { class: "note error", text: `The model did not load: ${err.message}` }));
    });
  }
}

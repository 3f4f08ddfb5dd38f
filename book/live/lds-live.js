// window.ldsLive: the programmatic surface of the live pages, and the mounting of their figures.
//
//   await ldsLive.ready                      -> {loadMs, model}
//   await ldsLive.tokenize(prompt)           -> {ids, tokens} (77 each), kinds, notes, truncatedText
//   await ldsLive.generate({prompt, seed, steps, guidance}, {onProgress, signal, record})
//                                            -> {width, height, rgba, ms}: rgba as `lds generate` saves it
// The model runs in worker.js; every call is a message to it.

import { mountAll } from "./figures.js";

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;

worker.onmessage = ({ data }) => {
  const call = pending.get(data.id);
  if (!call) return;
  if (data.type === "progress") {
    if (call.onProgress) call.onProgress(data);
    return;
  }
  pending.delete(data.id);
  if (data.type === "result") call.resolve(data.value);
  else call.reject(Object.assign(new Error(data.error.message), { kind: data.error.kind }));
};
worker.onerror = (event) => {
  const err = new Error(`The model's worker failed: ${event.message || "it could not start"}`);
  for (const call of pending.values()) call.reject(err);
  pending.clear();
};

function call(op, args, onProgress) {
  const id = nextId++;
  const promise = new Promise((resolve, reject) => pending.set(id, { resolve, reject, onProgress }));
  worker.postMessage({ id, op, args });
  return { id, promise };
}

function checkParams({ prompt = "", seed = 0, steps = 25, guidance = 7.5 } = {}) {
  if (typeof prompt !== "string") throw new TypeError("prompt must be a string");
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a whole number from 0 up, got ${seed}`);
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new RangeError(`steps must be a whole number from 1 to 1000, got ${steps}`);
  if (typeof guidance !== "number" || !Number.isFinite(guidance) || Math.abs(guidance) > 1000) {
    throw new RangeError(`guidance must be a number from -1000 to 1000, got ${guidance}`);
  }
  return { prompt, seed, steps, guidance };
}

export const ldsLive = {
  ready: call("ready").promise,
  async tokenize(prompt) {
    if (typeof prompt !== "string") throw new TypeError("prompt must be a string");
    return call("tokenize", { prompt }).promise;
  },
  async generate(params, { onProgress, signal, record } = {}) {
    const checked = checkParams(params);
    if (signal && signal.aborted) throw Object.assign(new Error("cancelled"), { kind: "cancelled" });
    const { id, promise } = call("generate", { params: checked, record }, onProgress);
    if (signal) signal.addEventListener("abort", () => worker.postMessage({ id: 0, op: "cancel", args: { target: id } }), { once: true });
    return promise;
  },
};
mountAll(ldsLive);

// The Web Worker that runs the model, so that the page never freezes while it computes.
//
// It loads onnxruntime-web (wasm, one thread: more threads need cross-origin isolation headers,
// which a plain static server does not send), the exported graphs and the tokenizer from the book's
// own host, then answers messages from lds-live.js: {id, op: "tokenize" | "generate" | "cancel", args}.
// Each reply is {id, type: "progress" | "result" | "error", ...}.

import * as ort from "../onnxruntime-web/ort.wasm.min.mjs";
import { Tokenizer } from "../tokenizers/tokenizers.min.mjs";
import { Cancelled, Pipeline } from "./pipeline.js";

const VENDOR = new URL("../onnxruntime-web/", import.meta.url);
const MODEL = new URL("./model/", import.meta.url);
const FORMAT = 1;  // lds/web/export.py's FORMAT

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

// The wasm binary is vendored gzipped (book/_vendor/VENDOR.txt); a server that already unpacked it
// (Content-Encoding: gzip) hands over the wasm itself, which starts with "\0asm".
async function gunzip(bytes) {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function load() {
  const t0 = performance.now();
  const found = await fetch(new URL("live.json", MODEL));
  if (!found.ok) {
    throw new Error(`this build of the book holds no live model (${found.status} for _static/live/model/live.json): ` +
      "the model it was built on may be too large for a browser. `make book` builds it with lds-mini's.");
  }
  const manifest = await found.json();
  if (manifest.format !== FORMAT) throw new Error(`the exported model has format ${manifest.format}; this page reads format ${FORMAT}. Rebuild the book (make book).`);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = VENDOR.href;
  ort.env.wasm.wasmBinary = await gunzip(await fetchBytes(new URL("ort-wasm-simd-threaded.wasm.gz", VENDOR)));
  const file = (name) => new URL(manifest.files[name].path, MODEL);
  const [tokenizerJson, te, unet, unetAttention, decoder, weights] = await Promise.all([
    fetch(file("tokenizer")).then((r) => r.json()),
    fetchBytes(file("text_encoder")), fetchBytes(file("unet")), fetchBytes(file("unet_attention")),
    fetchBytes(file("vae_decoder")), fetchBytes(file("unet_weights")),
  ]);
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const shared = { ...options, externalData: [{ path: manifest.files.unet_weights.path, data: weights }] };
  const sessions = {
    text_encoder: await ort.InferenceSession.create(te, options),
    unet: await ort.InferenceSession.create(unet, shared),
    unet_attention: await ort.InferenceSession.create(unetAttention, shared),
    vae_decoder: await ort.InferenceSession.create(decoder, options),
  };
  const tokenizer = new Tokenizer(tokenizerJson, manifest.tokenizer.config);
  const pipeline = new Pipeline({ ort, tokenizer, manifest, sessions });
  await pipeline.warmUp();
  return { pipeline, loadMs: performance.now() - t0 };
}

const loading = load();
const cancelled = new Set();

function describe(err) {
  const message = String(err && err.message ? err.message : err);
  if (err instanceof RangeError && /memory|allocation/i.test(message) || /out of memory|Aborted\(OOM\)|could not allocate/i.test(message)) {
    return { kind: "memory", message: `This browser ran out of memory for the model (${message}). Close other tabs, or use a desktop browser.` };
  }
  return { kind: err && err.name === "Cancelled" ? "cancelled" : err instanceof RangeError ? "input" : "error", message };
}

self.onmessage = async ({ data }) => {
  const { id, op, args } = data;
  if (op === "cancel") {
    cancelled.add(args.target);
    return;
  }
  try {
    const { pipeline, loadMs } = await loading;
    if (op === "ready") {
      self.postMessage({ id, type: "result", value: { loadMs, model: pipeline.manifest.model, manifest: pipeline.manifest } });
    } else if (op === "tokenize") {
      self.postMessage({ id, type: "result", value: pipeline.tokenize(args.prompt) });
    } else if (op === "generate") {
      const value = await pipeline.generate(args.params, {
        record: args.record || {},
        isCancelled: () => cancelled.has(id),
        onStep: (s) => self.postMessage({ id, type: "progress", ...s }),
      });
      self.postMessage({ id, type: "result", value }, [value.rgba.buffer]);
    } else {
      throw new Error(`unknown operation ${op}`);
    }
  } catch (err) {
    self.postMessage({ id, type: "error", error: describe(err) });
  } finally {
    cancelled.delete(id);
  }
};

// Step 6 of the loop: classifier-free guidance, the one visible line (chapter 8, Classifier-free guidance).
//
// lds, ComfyUI and AUTOMATIC1111: noise_pred_uncond + s * (noise_pred_text - noise_pred_uncond) for
// every s (0 = unconditional, 1 = conditional); lds.pipeline.guidance.apply_guidance.

const f = Math.fround;
export const MAX_GUIDANCE = 1000;

export function checkGuidance(s) {
  if (typeof s !== "number" || !Number.isFinite(s)) throw new RangeError(`guidance must be a finite number, got ${s}. Try 0 (unconditional), 1 (conditional only) or 7.5.`);
  if (Math.abs(s) > MAX_GUIDANCE) throw new RangeError(`guidance ${s} is outside [-${MAX_GUIDANCE}, ${MAX_GUIDANCE}]: every pixel would saturate. Chapter 8 sweeps 0-25.`);
  return s;
}

export function applyGuidance(uncond, text, s) {
  const scale = f(s);  // torch multiplies a float32 tensor by a Python float in float32
  const out = new Float32Array(uncond.length);
  for (let k = 0; k < uncond.length; k++) out[k] = f(uncond[k] + f(scale * f(text[k] - uncond[k])));
  return out;
}

// What a tool's "CFG = s" computes, as the lds scale that gives it (each convention's weights sum to 1).
export const CONVENTIONS = [
  { name: "lds / ComfyUI / AUTOMATIC1111", formula: "u + s(c − u)", scale: (s) => s },
  { name: "diffusers StableDiffusionPipeline", formula: "u + s(c − u) only when s > 1, else c alone", scale: (s) => (s > 1 ? s : 1) },
  { name: "Ho & Salimans w", formula: "(1 + w)c − w u, with w = the dial", scale: (w) => 1 + w },
];

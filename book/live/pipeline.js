// The denoising loop, written out as lds.pipeline.sampling.generate writes it, for the live pages.
//
// Chapter 7 (Denoising) walks through the loop; chapters 5, 6 and 8 look inside it. The numbered
// steps are generate()'s; each graph is the exported torch module (lds/web/export.py), run by
// onnxruntime-web, and the arithmetic between them is float32, as torch's.

import { cleanPrompt, tokenize } from "./tokenizer.js";
import { applyGuidance, checkGuidance } from "./guidance.js";
import { checkSteps, predOriginalSample, setTimesteps, step } from "./scheduler.js";
import { randn } from "./noise.js";
import { toRGBA } from "./image.js";

// onnxruntime's run() settles without giving the worker's event loop a turn, so a "cancel" message
// would wait until the loop ends; a message to ourselves lets it in between steps.
const channel = new MessageChannel();
const yieldToMessages = () => new Promise((resolve) => { channel.port1.onmessage = resolve; channel.port2.postMessage(0); });

export class Cancelled extends Error {
  constructor() { super("cancelled"); this.name = "Cancelled"; }
}

export class Pipeline {
  // model: {ort, tokenizer, manifest, sessions: {text_encoder, unet, unet_attention, vae_decoder}}
  constructor(model) {
    Object.assign(this, model);
    this.spec = model.manifest.tokenizer;
    this.scheduler = model.manifest.scheduler;
    this.uncond = null;  // the empty prompt's embeddings, the same for every generation
  }

  // One call of each graph at load time: onnxruntime prepares its kernels on a session's first run,
  // which would otherwise be paid by the reader's first image. Also encodes the empty prompt once.
  async warmUp() {
    const { ort, manifest } = this;
    const [c, h, w] = manifest.unet.latent_shape;
    this.uncond = await this.encode(this.tokenize("").ids);
    const d = manifest.text_encoder.hidden_size;
    const feeds = {
      sample: new ort.Tensor("float32", new Float32Array(2 * c * h * w), [2, c, h, w]),
      timestep: new ort.Tensor("int64", BigInt64Array.of(1n), []),
      encoder_hidden_states: new ort.Tensor("float32", new Float32Array(2 * 77 * d), [2, 77, d]),
    };
    await this.sessions.unet.run(feeds);
    await this.sessions.unet_attention.run({ ...feeds, attention_sums: new ort.Tensor("float32", new Float32Array(manifest.unet.attention_sums_length), [manifest.unet.attention_sums_length]) });
    await this.decode(new Float32Array(c * h * w));
  }

  tokenize(prompt) {
    const [cleaned, notes] = cleanPrompt(prompt, this.spec.max_prompt_chars);
    const tokenized = tokenize(this.tokenizer, this.spec, cleaned);
    if (tokenized.truncatedIds.length) notes.push(`truncated at 77 tokens; cut off: ${JSON.stringify(tokenized.truncatedText)}`);
    return { ...tokenized, notes };
  }

  async encode(ids) {  // step 2 for one prompt: (1, 77) -> (1, 77, d)
    const input = new this.ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const out = await this.sessions.text_encoder.run({ input_ids: input });
    return out.prompt_embeds.data;
  }

  async decode(latents) {  // step 7: (1, C, h, w) -> (1, 3, H, W) in [0, 1]
    const [c, h, w] = this.manifest.unet.latent_shape;
    const out = await this.sessions.vae_decoder.run({ latents: new this.ort.Tensor("float32", latents, [1, c, h, w]) });
    return out.image.data;
  }

  // record: {maps: bool (chapter 6), steps: bool (chapter 7: each step's latents and decoded x̂0)}
  async generate({ prompt, seed = 0, steps = 25, guidance = 7.5 }, { onStep, record = {}, isCancelled } = {}) {
    const t0 = performance.now();
    checkGuidance(guidance);
    checkSteps(this.scheduler, steps);
    const { ort, manifest } = this;
    const [c, h, w] = manifest.unet.latent_shape;
    const { height, width } = manifest.image;
    const d = manifest.text_encoder.hidden_size;
    const n = c * h * w;

    // 1. Tokenize: 77 slots; report what truncation cut off
    const tokenized = this.tokenize(prompt);
    const notes = [...tokenized.notes];
    if (!tokenized.prompt.trim()) notes.push("the prompt is empty: the conditional prediction equals the unconditional one");

    // 2. Encode the prompt and the unconditional (empty) prompt; uncond first, as diffusers batches them
    const cond = await this.encode(tokenized.ids);
    if (!this.uncond) this.uncond = await this.encode(this.tokenize("").ids);
    const embeds = new Float32Array(2 * 77 * d);
    embeds.set(this.uncond, 0);
    embeds.set(cond, 77 * d);
    const embedsTensor = new ort.Tensor("float32", embeds, [2, 77, d]);

    // 3. Timesteps
    const timesteps = setTimesteps(this.scheduler, steps);

    // 4. Initial noise from the seed: torch's CPU generator, reproduced (noise.js)
    let latents = randn(n, seed);
    const sigma = Math.fround(this.scheduler.init_noise_sigma);
    for (let k = 0; k < n; k++) latents[k] = Math.fround(latents[k] * sigma);

    // 5. The denoising loop
    const unet = record.maps ? this.sessions.unet_attention : this.sessions.unet;
    let sums = record.maps ? new Float32Array(manifest.unet.attention_sums_length) : null;
    let maps = null;
    const shares = [], trace = [];
    for (let i = 0; i < timesteps.length; i++) {
      if (isCancelled) {
        await yieldToMessages();
        if (isCancelled()) throw new Cancelled();
      }
      const t = timesteps[i];
      const input = new Float32Array(2 * n);  // DDIM's scale_model_input returns the latents unchanged
      input.set(latents, 0);
      input.set(latents, n);
      const feeds = {
        sample: new ort.Tensor("float32", input, [2, c, h, w]),
        timestep: new ort.Tensor("int64", BigInt64Array.of(BigInt(t)), []),
        encoder_hidden_states: embedsTensor,
      };
      if (record.maps) feeds.attention_sums = new ort.Tensor("float32", sums, [sums.length]);
      const out = await unet.run(feeds);
      const noisePred = out.noise_pred.data;
      const noisePredUncond = noisePred.subarray(0, n), noisePredText = noisePred.subarray(n, 2 * n);
      // 6. Classifier-free guidance, for every scale (0 = unconditional, 1 = conditional)
      const guided = applyGuidance(noisePredUncond, noisePredText, guidance);
      const latentsIn = latents;
      [latents] = step(this.scheduler, guided, t, latents, steps);
      if (record.maps) {
        sums = out.attention_sums_out.data;
        maps = out.maps.data;
        shares.push(Array.from(out.share.data));
      }
      if (record.steps) {
        const x0 = predOriginalSample(this.scheduler, latentsIn, guided, t);
        trace.push({ i, t, latentsIn, predOriginalSample: x0, predOriginalImage: toRGBA(await this.decode(x0), width, height) });
      }
      if (onStep) onStep({ i, t, steps: timesteps.length });
    }

    // 7. Decode the latents into pixels, and into the bytes `lds generate` saves
    const image = await this.decode(latents);
    const rgba = toRGBA(image, width, height);
    const result = { width, height, rgba, ms: performance.now() - t0, notes, tokens: tokenized.tokens, ids: tokenized.ids,
                     kinds: tokenized.kinds, latents, latentShape: [c, h, w], params: { prompt, seed, steps, guidance } };
    if (record.maps) Object.assign(result, { maps, mapsShape: [77, h, w], shares });
    if (record.steps) result.trace = trace;
    return result;
  }
}

// Steps 3 and 6 of the loop: diffusers' DDIMScheduler with the model's config (chapter 7, Denoising).
//
// set_timesteps with timestep_spacing "leading" and steps_offset, and step() with eta = 0, in the
// same float32 operations as diffusers (each rounded with Math.fround). alphas_cumprod come from
// the export (live.json), as the scheduler computed them in float32; set_alpha_to_one decides the
// last step's alpha (the export writes it as final_alpha_cumprod).

const f = Math.fround;

export function checkSteps(scheduler, steps) {
  const n = scheduler.config.num_train_timesteps;
  if (!Number.isInteger(steps) || steps < 1 || steps > n) {
    throw new RangeError(`steps must be a whole number from 1 to ${n} (the scheduler's training steps), got ${steps}. 25 is a good default.`);
  }
  return steps;
}

export function setTimesteps(scheduler, steps) {
  const cfg = scheduler.config;
  checkSteps(scheduler, steps);
  if (cfg.timestep_spacing !== "leading") throw new Error(`timestep_spacing ${cfg.timestep_spacing} is not implemented`);
  // diffusers: (np.arange(0, n) * step_ratio).round()[::-1] + steps_offset
  const ratio = Math.floor(cfg.num_train_timesteps / steps);
  const timesteps = [];
  for (let i = steps - 1; i >= 0; i--) timesteps.push(i * ratio + cfg.steps_offset);
  return timesteps;
}

function alphas(scheduler, t, steps) {
  const prev = t - Math.floor(scheduler.config.num_train_timesteps / steps);
  const a = scheduler.alphas_cumprod;
  return [a[t], prev >= 0 ? a[prev] : scheduler.final_alpha_cumprod];
}

// x̂0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t): lds.pipeline.sampling.pred_original_sample
export function predOriginalSample(scheduler, sample, noisePred, t) {
  const a = scheduler.alphas_cumprod[t];
  const sb = f(Math.sqrt(f(1 - a))), sa = f(Math.sqrt(a));
  const out = new Float32Array(sample.length);
  for (let k = 0; k < sample.length; k++) out[k] = f(f(sample[k] - f(sb * noisePred[k])) / sa);
  return out;
}

// DDIMScheduler.step(model_output, timestep, sample, eta=0.0): returns [prev_sample, pred_original_sample]
export function step(scheduler, noisePred, t, sample, steps) {
  const [alphaProdT, alphaProdPrev] = alphas(scheduler, t, steps);
  const sqrtBeta = f(Math.sqrt(f(1 - alphaProdT)));
  const sqrtAlpha = f(Math.sqrt(alphaProdT));
  const sqrtAlphaPrev = f(Math.sqrt(alphaProdPrev));
  const direction = f(Math.sqrt(f(f(1 - alphaProdPrev) - 0)));  // (1 - ᾱ_prev - σ_t²)^½ with σ_t = 0 (eta = 0)
  const prev = new Float32Array(sample.length), x0 = new Float32Array(sample.length);
  for (let k = 0; k < sample.length; k++) {
    x0[k] = f(f(sample[k] - f(sqrtBeta * noisePred[k])) / sqrtAlpha);
    prev[k] = f(f(sqrtAlphaPrev * x0[k]) + f(direction * noisePred[k]));
  }
  return [prev, x0];
}

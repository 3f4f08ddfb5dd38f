// Step 1 of the loop: the prompt in 77 slots (chapter 5, Tokenization).
//
// The tokenizer is the model's own (tokenizer.json, exported from the pipeline's CLIPTokenizer) read
// by @huggingface/tokenizers. Padding and truncation are lds.models.tokenizer.tokenize's: the start
// token, the first 75 content tokens, the end token, then the end token again as padding, and
// what did not fit is reported. cleanPrompt is lds.pipeline.sampling.clean_prompt.

export function cleanPrompt(prompt, maxChars) {
  if (typeof prompt !== "string") throw new TypeError(`prompt must be a string, got ${typeof prompt}`);
  const notes = [];
  const chars = Array.from(prompt);  // code points, as Python counts them
  if (chars.length > maxChars) {
    throw new RangeError(`The prompt has ${chars.length.toLocaleString("en")} characters; lds accepts at most ${maxChars.toLocaleString("en")}.`);
  }
  const lone = (c) => c.length === 1 && c >= "\uD800" && c <= "\uDFFF";  // an unpaired surrogate
  if (chars.some(lone)) {
    prompt = chars.map((c) => (lone(c) ? "\uFFFD" : c)).join("");
    notes.push("unpaired surrogate characters were replaced with U+FFFD");
  }
  const controls = new Set(Array.from(prompt).filter((c) => /[\u0000-\u001F\u007F-\u009F]/.test(c) && c !== "\t" && c !== "\n"));
  if (controls.size) {
    prompt = Array.from(prompt).map((c) => (controls.has(c) ? " " : c)).join("");
    notes.push(`${controls.size} kind(s) of control character were replaced with spaces`);
  }
  return [prompt, notes];
}

export function tokenize(tokenizer, spec, prompt) {
  const length = spec.model_max_length;
  const full = tokenizer.encode(prompt, { add_special_tokens: false }).ids;
  const limit = length - 2;
  const content = full.slice(0, limit);
  const ids = [spec.bos_token_id, ...content, spec.eos_token_id];
  while (ids.length < length) ids.push(spec.pad_token_id);
  const cut = full.slice(limit);
  const kinds = ids.map((_, i) => (i === 0 ? "start" : i <= content.length ? "content" : i === content.length + 1 ? "end" : "padding"));
  return {
    prompt,
    ids,
    tokens: ids.map((id) => tokenizer.id_to_token(id)),
    kinds,
    nContent: content.length,
    truncatedIds: cut,
    truncatedText: cut.length ? tokenizer.decode(cut) : "",
  };
}

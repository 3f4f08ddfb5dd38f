"""What the live pages are checked against: the prompts, and the loop run with onnxruntime in Python.

tests/test_web_export.py, tests/test_live.py and benchmarks/live.py use these, so that the Python
check of each exported graph, the browser test and the benchmark's parity figures read the same
prompts. Chapter 5 (Tokenization) explains why these prompts are hard: other scripts, emoji,
nothing at all, more than 77 tokens.
"""

from __future__ import annotations

import numpy as np

# Input a reader can type that a tokenizer or a page may mishandle (issue 28, "bad input").
HARD_PROMPTS = (
    "",  # empty: the unconditional image
    "   ",  # only spaces
    "grinning face " * 40,  # more than 75 content tokens: truncated
    "x" * 10_000,  # 10,000 characters
    "وجه مبتسم",  # Arabic, right to left
    "چهره خندان با چشمان خندان",  # Persian, right to left
    "😀 🐶 👍🏽 🇫🇷",  # emoji, a skin tone, a flag
    "e\u0301te\u0301 cafe\u0301",  # combining marks (NFC composes them)
    "Z\u0351\u0353a\u0346\u0325l\u0310\u0354g\u0350\u0339o",  # stacked combining marks
    "tab\there\nnew line",  # whitespace the normaliser folds
    "a\u0007bell and a \u0000null",  # control characters, replaced by spaces
    "\u202eright-to-left override",  # a bidi control
    "ＦＵＬＬＷＩＤＴＨ letters",  # compatibility forms
    "<|startoftext|> <|endoftext|>",  # the special tokens typed as text
    "UPPER lower MiXeD",
    "  leading and trailing  ",
    "numbers 1234567890 and punctuation!?.,;:'\"()[]{}",
)


def parity_prompts(n_per_language: int = 20) -> list[str]:
    """At least 300 prompts: emoji names in all 14 languages of the corpus, emoji, and :data:`HARD_PROMPTS`."""
    from lds.data.corpus import LANGUAGES, load_corpus

    corpus = load_corpus()
    rng = np.random.default_rng(0)
    picks = rng.choice(len(corpus), size=n_per_language, replace=False)
    prompts = [corpus.records[i]["names"][lang] for lang in LANGUAGES for i in picks]
    prompts += [corpus.records[i]["char"] for i in picks]  # the emoji themselves
    prompts += [f"{corpus.records[i]['names']['en']} {corpus.records[i]['char']}" for i in picks[:10]]
    return prompts + list(HARD_PROMPTS)


# Prompts x seeds for image parity (the benchmark takes 10 x 2; CI a few)
IMAGE_PROMPTS = ("grinning face", "waving hand", "dog face", "red apple", "cara sonriente", "笑脸", "وجه مبتسم",
                 "thumbs up: medium skin tone", "", "grinning face " * 30)


class OnnxPipeline:
    """The exported graphs run with onnxruntime in Python, in :func:`lds.pipeline.sampling.generate`'s steps.

    Tokenization, the scheduler and the starting noise are lds's own (torch); only the networks are
    the exported graphs, so a difference from ``generate`` is the export's. The browser runs the same
    graphs with the steps written in JavaScript (book/live/pipeline.js).
    """

    def __init__(self, pipe, folder, threads: int = 1):
        import onnxruntime as ort

        from lds.web.export import load_manifest

        self.pipe, self.manifest = pipe, load_manifest(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.sessions = {name: ort.InferenceSession(str(folder / self.manifest["files"][name]["path"]), options,
                                                    providers=["CPUExecutionProvider"])
                         for name in ("text_encoder", "unet", "unet_attention", "vae_decoder")}

    def encode(self, prompt: str) -> np.ndarray:
        from lds.models.tokenizer import tokenize

        ids = np.array([tokenize(self.pipe.tokenizer, prompt).input_ids], np.int64)
        return self.sessions["text_encoder"].run(None, {"input_ids": ids})[0]

    def generate(self, prompt: str, *, seed: int = 0, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                 attention: bool = False) -> dict:
        import torch

        from lds.pipeline.guidance import apply_guidance

        scheduler = self.pipe.scheduler
        scheduler.set_timesteps(num_inference_steps)
        embeds = np.concatenate([self.encode(""), self.encode(prompt)])  # uncond first
        c, h, w = self.manifest["unet"]["latent_shape"]
        latents = torch.randn((1, c, h, w), generator=torch.Generator("cpu").manual_seed(seed))
        latents = latents * scheduler.init_noise_sigma
        sums = np.zeros(self.manifest["unet"]["attention_sums_length"], np.float32)
        out = {"shares": []}
        for t in scheduler.timesteps:
            feeds = {"sample": np.concatenate([latents.numpy()] * 2), "timestep": np.array(int(t), np.int64),
                     "encoder_hidden_states": embeds}
            if attention:
                noise_pred, sums, out["maps"], share = self.sessions["unet_attention"].run(
                    None, {**feeds, "attention_sums": sums})
                out["shares"].append(share)
            else:
                noise_pred = self.sessions["unet"].run(None, feeds)[0]
            noise_pred_uncond, noise_pred_text = torch.from_numpy(noise_pred).chunk(2)
            noise_pred = apply_guidance(noise_pred_uncond, noise_pred_text, guidance_scale)
            latents = scheduler.step(noise_pred, t, latents, eta=0.0, return_dict=False)[0]
        out["image"] = self.sessions["vae_decoder"].run(None, {"latents": latents.numpy()})[0]  # (1, 3, H, W)
        return out


def saved_rgb(image: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) uint8, as ``lds generate`` saves it (diffusers' numpy_to_pil)."""
    return (image[0].transpose(1, 2, 0) * 255).round().astype("uint8")

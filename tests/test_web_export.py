"""lds.web.export: each exported graph against torch, run with onnxruntime in Python (issue 28).

The live pages (book/live.md) run these graphs in the browser; tests/test_live.py checks the page
itself. Tolerances: the graphs compute in float32 as torch does, with the same weights (float16 on
disk, stored as float16 in the graphs), so they differ from torch only by the order of float32
operations: about 2e-6 measured on lds-mini; the tests allow 1e-4 on values of order 1 and one
level of 255 in the saved 8-bit image (a value within 2e-6 of a rounding boundary may round the
other way; the issue allows 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the book extra: pip install -e '.[book]'")

from lds.pipeline.attention import map_correlation, record_cross_attention  # noqa: E402
from lds.pipeline.sampling import generate  # noqa: E402
from lds.web.export import ExportError, export_web, load_manifest  # noqa: E402
from lds.web.parity import HARD_PROMPTS, OnnxPipeline, saved_rgb  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def exported(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-model")
    export_web(pipe, folder)
    return folder


@pytest.fixture(scope="module")
def onnx_pipe(pipe, exported):
    return OnnxPipeline(pipe, exported)


def test_text_encoder_matches_torch(pipe, onnx_pipe):
    from lds.models.text_encoder import encode_prompts

    for prompt in ["grinning face", "", "😀 🐶", "وجه مبتسم", HARD_PROMPTS[2]]:
        want = encode_prompts(pipe.text_encoder, pipe.tokenizer, [prompt]).numpy()
        got = onnx_pipe.encode(prompt)
        assert got.shape == want.shape == (1, 77, pipe.text_encoder.config.hidden_size)
        assert np.abs(got - want).max() < TOL, prompt


def test_unet_graphs_match_torch(pipe, onnx_pipe):
    gen = torch.Generator().manual_seed(1)
    c, h, w = onnx_pipe.manifest["unet"]["latent_shape"]
    sample = torch.randn((2, c, h, w), generator=gen)
    embeds = torch.from_numpy(np.concatenate([onnx_pipe.encode(""), onnx_pipe.encode("waving hand")]))
    sums = np.zeros(onnx_pipe.manifest["unet"]["attention_sums_length"], np.float32)
    for t in (1, 481, 961):
        want = pipe.unet(sample, torch.tensor(t), encoder_hidden_states=embeds).sample.detach().numpy()
        feeds = {"sample": sample.numpy(), "timestep": np.array(t, np.int64), "encoder_hidden_states": embeds.numpy()}
        plain = onnx_pipe.sessions["unet"].run(None, feeds)[0]
        instrumented = onnx_pipe.sessions["unet_attention"].run(None, {**feeds, "attention_sums": sums})[0]
        assert np.abs(plain - want).max() < TOL
        assert np.array_equal(plain, instrumented), "the instrumented U-Net must predict exactly what the plain one does"


def test_decoder_matches_torch(pipe, onnx_pipe):
    from lds.pipeline.sampling import decode_latents

    latents = torch.randn((1, *onnx_pipe.manifest["unet"]["latent_shape"]), generator=torch.Generator().manual_seed(2))
    want = decode_latents(pipe.vae, latents).numpy()
    got = onnx_pipe.sessions["vae_decoder"].run(None, {"latents": latents.numpy()})[0]
    assert got.shape == want.shape and np.abs(got - want).max() < TOL


@pytest.mark.parametrize("prompt, seed, scale", [("grinning face", 0, 7.5), ("waving hand", 3, 0.0), ("", 1, 7.5)])
def test_loop_on_the_graphs_gives_lds_images_and_word_maps(pipe, onnx_pipe, prompt, seed, scale):
    """The whole loop on the exported graphs: the same 8-bit image as ``generate``, and the instrumented
    U-Net's word maps and shares those of ``record_cross_attention`` (DAAM's aggregation)."""
    with record_cross_attention(pipe) as rec:
        out = generate(pipe, prompt, seed=seed, num_inference_steps=10, guidance_scale=scale, callback=rec.step)
    record = rec.result()
    got = onnx_pipe.generate(prompt, seed=seed, num_inference_steps=10, guidance_scale=scale, attention=True)
    assert np.abs(got["image"] - out.image_tensor.numpy()).max() < TOL
    assert np.abs(saved_rgb(got["image"]).astype(int) - np.asarray(out.images[0]).astype(int)).max() <= 1
    maps = torch.from_numpy(got["maps"])
    assert maps.shape == record.maps.shape
    assert np.abs(got["maps"] - record.maps.numpy()).max() < TOL * float(record.maps.abs().max())
    assert min(map_correlation(maps[0, k], record.maps[0, k]) for k in range(77)) > 0.9999
    shares = np.stack(got["shares"])[:, 0]  # (steps, 77)
    assert np.abs(shares - record.share_per_step[:, 0].numpy()).max() < TOL


def test_weights_stored_in_float16_and_the_unet_once(exported, pipe):
    manifest = load_manifest(exported)
    files = {k: v["bytes"] for k, v in manifest["files"].items()}
    n_text = sum(p.numel() for p in pipe.text_encoder.parameters())
    n_unet = sum(p.numel() for p in pipe.unet.parameters())
    assert files["text_encoder"] < 2.1 * n_text  # float16: 2 bytes a weight, plus the graph
    assert 1.95 * n_unet < files["unet_weights"] < 2.1 * n_unet  # biases and norms under 1 kB stay in the graphs
    assert files["unet"] + files["unet_attention"] < 0.2 * files["unet_weights"], "the U-Net graphs must share their weights"
    assert sum(files.values()) < 40e6


def test_manifest_holds_the_shipped_scheduler_and_tokenizer(exported, pipe):
    from lds.pipeline.loading import model_source

    manifest = load_manifest(exported)
    shipped = json.loads((model_source(pipe).folder / "scheduler" / "scheduler_config.json").read_text())
    for key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "steps_offset", "set_alpha_to_one",
                "timestep_spacing", "prediction_type"):
        assert manifest["scheduler"]["config"][key] == shipped[key], key
    alphas = np.array(manifest["scheduler"]["alphas_cumprod"], np.float32)
    assert np.array_equal(alphas, pipe.scheduler.alphas_cumprod.numpy())  # float32 values, written exactly
    assert manifest["scheduler"]["final_alpha_cumprod"] == float(pipe.scheduler.final_alpha_cumprod)
    assert manifest["vae"]["scaling_factor"] == pipe.vae.config.scaling_factor
    assert manifest["tokenizer"]["model_max_length"] == 77


def test_tokenizer_json_gives_lds_token_ids(exported, pipe):
    """tokenizer.json, read by the tokenizers library (what @huggingface/tokenizers reimplements), gives
    the content ids of lds.tokenize; the page adds start, end and padding as tokenize does."""
    from tokenizers import Tokenizer

    from lds.models.tokenizer import tokenize
    from lds.web.parity import parity_prompts

    tok = Tokenizer.from_file(str(exported / "tokenizer.json"))
    for prompt in parity_prompts(3):
        want = tokenize(pipe.tokenizer, prompt)
        content = tok.encode(prompt, add_special_tokens=False).ids
        assert want.input_ids[1:1 + want.n_content] == content[:75], prompt
        assert want.truncated_ids == content[75:], prompt


def test_missing_or_wrong_folder_is_a_clear_error(tmp_path, exported):
    import shutil

    with pytest.raises(ExportError, match="does not exist.*lds export-web"):
        load_manifest(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="holds no live.json"):
        load_manifest(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "unet.weights").write_bytes(b"not the weights")
    with pytest.raises(ExportError, match="unet.weights is not the file that was exported"):
        load_manifest(broken)
    (broken / "unet.weights").unlink()
    with pytest.raises(ExportError, match="unet.weights is missing"):
        load_manifest(broken)


def test_cli_refuses_a_folder_it_did_not_write_and_a_wrong_model(tmp_path, capsys):
    from lds.cli import main

    (tmp_path / "notes.txt").write_text("a reader's file")
    assert main(["export-web", str(tmp_path)]) == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "a reader's file"
    assert main(["export-web", str(tmp_path / "out"), "--model", str(tmp_path / "no-such-model")]) == 2
    assert "Unknown model" in capsys.readouterr().err


def test_only_ddim_pipelines_are_exported(pipe, tmp_path):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    other = StableDiffusionPipeline(**{**pipe.components,
                                       "scheduler": EulerDiscreteScheduler.from_config(pipe.scheduler.config)})
    with pytest.raises(ExportError, match="DDIMScheduler"):
        export_web(other, tmp_path)

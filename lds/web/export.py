"""Export a pipeline for the live pages: its graphs as ONNX, its tokenizer and its loop's settings.

The page "Run it in your browser" (``book/live.md``) and the live figures of chapters 5-8 run
lds-mini in the reader's browser with onnxruntime-web; ``book/live/`` is their JavaScript, which
repeats the numbered steps of :func:`lds.pipeline.sampling.generate`. This module writes what that
JavaScript reads, into one folder (``make book`` writes it to ``_build/html/_static/live/model/``;
``lds export-web FOLDER`` anywhere):

- ``text_encoder.onnx``: token ids (1, 77) -> ``prompt_embeds`` (1, 77, d),
  :func:`lds.models.text_encoder.encode_input_ids`;
- ``unet.onnx``: ``(latent_model_input, timestep, encoder_hidden_states)`` -> ``noise_pred`` for the
  batch ``[uncond, cond]``;
- ``unet_attention.onnx``: the same U-Net with :func:`lds.pipeline.attention.record_cross_attention`
  inside it. Besides ``noise_pred`` it takes and returns ``attention_sums``, the conditional half's
  cross-attention probabilities of every layer and head summed over the steps so far, and returns the
  word maps those sums give under :func:`lds.pipeline.attention.aggregate_maps` (DAAM's aggregation,
  as chapter 6 draws them) and the step's share of attention per slot;
- ``unet.weights``: the two U-Net graphs' weights, stored once and shared (ONNX external data);
- ``vae_decoder.onnx``: scaled latents -> pixels in [0, 1], :func:`lds.models.autoencoder.decode`;
- ``tokenizer.json``: the pipeline's tokenizer in the ``tokenizers`` library's format, which
  ``@huggingface/tokenizers`` reads;
- ``live.json``: the scheduler's config and its ``alphas_cumprod``, the guidance formula, the sizes,
  the latent scaling factor, and each file's size and sha256.

Weights are stored as float16 where that loses nothing: lds-mini's weights are float16 on disk, so
each such tensor is stored in float16 and cast back to float32 inside the graph, which then computes
in float32 exactly as torch does (``weights_as_float16``). The graphs are build outputs, never
committed. Chapter 1 (The model is not one network) explains the parts exported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

MANIFEST = "live.json"
FORMAT = 1  # bump when the files or live.json change shape; book/live/ checks it
OPSET = 17  # onnxruntime-web 1.30 runs every operator these graphs use at this opset
MAX_WEIGHT_MB = 200  # a browser tab is not the place for a larger model (SD 1.5's U-Net alone is 1.7 GB)


class ExportError(RuntimeError):
    """The pipeline cannot be exported for the live pages, or an exported folder is unusable."""


# ----------------------------------------------------------------------------------------------
# The modules that are traced: each one step of generate(), as lds computes it
# ----------------------------------------------------------------------------------------------

class TextEncoderGraph(torch.nn.Module):
    """Step 2 of ``generate``: 77 token ids -> ``prompt_embeds`` (the last hidden states)."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):  # (1, 77) int64 -> (1, 77, d)
        from lds.models.text_encoder import encode_input_ids

        return encode_input_ids(self.text_encoder, input_ids)


class UNetGraph(torch.nn.Module):
    """Step 5: the U-Net's noise prediction for ``[uncond, cond]``."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):  # (2, C, h, w), (), (2, 77, d)
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]


class _TracedStore:
    """The recorder's store for a traced step: the conditional half of each layer's probabilities.

    :class:`lds.pipeline.attention.CrossAttentionRecorder` computes the probabilities and hands them
    to a store; lds's own store works out each layer's grid from the tensor's sizes with Python
    arithmetic, which the ONNX tracer cannot follow, so this one is told the grids (from a recorded
    run) and reshapes exactly as lds's does: ``(B, heads, hw, 77) -> (B, heads, 77, h, w)``.
    """

    active = True

    def __init__(self, shapes: dict):
        self.shapes = shapes  # layer -> (1, heads, 77, h, w)
        self.layer_maps, self.totals = {}, []

    def add(self, name, probs):  # (2, heads, hw, 77), unconditional half first
        probs = probs[probs.shape[0] // 2:]  # keep="cond", as record_cross_attention keeps it
        self.layer_maps[name] = probs.transpose(2, 3).reshape(self.shapes[name]).float()
        self.totals.append(probs.float().mean(1).sum(1))  # (1, 77): as lds's store, heads averaged


class UNetAttentionGraph(torch.nn.Module):
    """Step 5 with chapter 6's instrument: the U-Net with lds's cross-attention recorders on it.

    ``attention_sums`` is flat: every recorded layer's ``(1, heads, 77, h, w)`` sum over the steps so
    far, in the order of :attr:`layers` (the order the U-Net calls them). The graph adds this step's
    probabilities and aggregates the new sums with :func:`lds.pipeline.attention.aggregate_maps`, so
    its ``maps`` after the last step are ``record.maps`` after ``generate`` in Python
    (tests/test_web_export.py checks it), and ``share`` is the step's row of ``record.share_per_step``.
    """

    def __init__(self, pipe, aggregate: str = "daam"):
        super().__init__()
        self.unet = pipe.unet
        self.aggregate = aggregate
        self.layers, self.shapes = self._layer_shapes(pipe)

    def _layer_shapes(self, pipe):
        from lds.pipeline.attention import record_cross_attention

        cfg = pipe.unet.config
        s = cfg.sample_size
        with torch.no_grad(), record_cross_attention(pipe) as rec:
            pipe.unet(torch.zeros(2, cfg.in_channels, s, s), torch.tensor(1),
                      encoder_hidden_states=torch.zeros(2, 77, cfg.cross_attention_dim))
            record = rec.result()
        layers = list(record.layer_maps)
        return layers, [tuple(record.layer_maps[k].shape) for k in layers]

    @property
    def sums_length(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def forward(self, sample, timestep, encoder_hidden_states, attention_sums):
        from lds.pipeline.attention import CrossAttentionRecorder, aggregate_maps

        store = _TracedStore(dict(zip(self.layers, self.shapes)))
        original = self.unet.attn_processors
        self.unet.set_attn_processor({name: (CrossAttentionRecorder(store, name) if name in store.shapes else proc)
                                      for name, proc in original.items()})
        try:
            noise_pred = self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                                   return_dict=False)[0]
        finally:
            self.unet.set_attn_processor(original)
        sums, start = {}, 0
        for name, shape in zip(self.layers, self.shapes):
            n = math.prod(shape)
            sums[name] = attention_sums[start:start + n].reshape(shape) + store.layer_maps[name]
            start += n
        maps = aggregate_maps(sums, self.aggregate, tuple(sample.shape[-2:]))  # (1, 77, h, w)
        total = sum(store.totals)
        share = total / total.sum(-1, keepdim=True)  # (1, 77): this step's share of attention per slot
        flat = torch.cat([sums[name].flatten() for name in self.layers])
        return noise_pred, flat, maps, share


class DecoderGraph(torch.nn.Module):
    """Step 7: scaled latents -> pixels in [0, 1] (the VAE's decoder, :func:`lds.models.autoencoder.decode`)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latents):  # (1, C, h, w) -> (1, 3, H, W)
        from lds.models.autoencoder import decode

        return decode(self.vae, latents)


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------

def _to_onnx(module, args, input_names, output_names):
    import onnx

    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def weights_as_float16(model, min_elements: int = 16):
    """Store each float32 weight that float16 holds exactly as float16, cast back to float32 in the graph.

    Lossless: a weight is converted only if every value survives the round trip, so the graph
    computes with the very numbers torch does (lds-mini's weights are float16 on disk). Returns the
    number of weights converted.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts, converted = [], 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or math.prod(init.dims) < min_elements:
            continue
        w = numpy_helper.to_array(init)
        half = w.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), w, equal_nan=True):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, name + "_float16"))
        casts.append(helper.make_node("Cast", [name + "_float16"], [name], to=TensorProto.FLOAT,
                                      name=f"float16_to_float32_{converted}"))
        converted += 1
    for node in reversed(casts):  # before every node, so the graph stays in topological order
        graph.node.insert(0, node)
    return converted


def drop_zero_constants(model, min_elements: int = 1024) -> int:
    """Replace large all-zero constants that are only added (``x + 0``) by a scalar zero.

    diffusers' ``get_attention_scores`` passes ``torch.empty(...)`` to ``baddbmm`` with ``beta=0``; the
    exporter folds ``0 * empty`` into a constant of zeros the size of the attention matrix, one per
    layer (1.5 MB of zeros in lds-mini's instrumented U-Net). Adding a scalar zero gives the same
    numbers. Returns how many constants were replaced.
    """
    from onnx import numpy_helper

    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    replaced = 0
    for node in model.graph.node:
        if node.op_type != "Constant" or node.attribute[0].name != "value":
            continue
        value = numpy_helper.to_array(node.attribute[0].t)
        if value.size < min_elements or np.any(value) or set(consumers.get(node.output[0], [])) != {"Add"}:
            continue
        node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.zeros((), value.dtype)))
        replaced += 1
    return replaced


def share_weights(models: dict, folder: Path, filename: str, min_bytes: int = 1024) -> None:
    """Store the weights of several graphs of one network once, in ``filename`` (ONNX external data).

    The U-Net and its instrumented form hold the same tensors; each is written once and every graph
    points at it by offset, so the page downloads the U-Net's weights once for both.
    """
    from onnx import TensorProto, numpy_helper

    blob, where = bytearray(), {}
    for model in models.values():
        for init in model.graph.initializer:
            raw = numpy_helper.to_array(init).tobytes()
            if len(raw) < min_bytes:
                continue
            key = (init.data_type, tuple(init.dims), hashlib.sha256(raw).hexdigest())
            if key not in where:
                blob += b"\0" * (-len(blob) % 64)  # aligned, as onnx's own external-data writer does
                where[key] = len(blob)
                blob += raw
            init.ClearField("raw_data")
            for field in ("float_data", "int32_data", "int64_data", "double_data"):
                init.ClearField(field)
            init.data_location = TensorProto.EXTERNAL
            del init.external_data[:]
            for k, v in (("location", filename), ("offset", str(where[key])), ("length", str(len(raw)))):
                entry = init.external_data.add()
                entry.key, entry.value = k, v
    (Path(folder) / filename).write_bytes(bytes(blob))


def _export_graphs(graphs, pipe, ids, sample, t, embeds, c, h, w) -> None:
    graphs["text_encoder"] = _to_onnx(TextEncoderGraph(pipe.text_encoder), (ids,), ["input_ids"], ["prompt_embeds"])
    graphs["unet"] = _to_onnx(UNetGraph(pipe.unet), (sample, t, embeds),
                              ["sample", "timestep", "encoder_hidden_states"], ["noise_pred"])
    attention = UNetAttentionGraph(pipe)
    graphs["unet_attention"] = _to_onnx(
        attention, (sample, t, embeds, torch.zeros(attention.sums_length)),
        ["sample", "timestep", "encoder_hidden_states", "attention_sums"],
        ["noise_pred", "attention_sums_out", "maps", "share"])
    graphs["vae_decoder"] = _to_onnx(DecoderGraph(pipe.vae), (torch.zeros(1, c, h, w),), ["latents"], ["image"])
    graphs["_attention"] = attention


def _file_entry(path: Path) -> dict:
    data = path.read_bytes()
    return {"path": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _check_exportable(pipe) -> None:
    from diffusers import DDIMScheduler

    if not isinstance(pipe.scheduler, DDIMScheduler):
        raise ExportError(f"The live pages run diffusers' DDIMScheduler (lds-mini's); this pipeline has "
                          f"{type(pipe.scheduler).__name__}. Load it with a DDIM scheduler to export it.")
    cfg = pipe.scheduler.config
    if cfg.prediction_type != "epsilon" or cfg.timestep_spacing != "leading" or cfg.thresholding \
            or cfg.clip_sample or cfg.rescale_betas_zero_snr:
        raise ExportError("The live pages' DDIM step covers prediction_type='epsilon', timestep_spacing='leading', "
                          "no thresholding, no clip_sample, no rescale_betas_zero_snr (lds-mini's scheduler config); "
                          f"this one differs: {dict(cfg)}")
    n_weights = sum(p.numel() for m in (pipe.text_encoder, pipe.unet, pipe.vae.decoder) for p in m.parameters())
    if n_weights * 2 / 1e6 > MAX_WEIGHT_MB:
        raise ExportError(f"This pipeline's text encoder, U-Net and decoder hold {n_weights / 1e6:.0f}M weights "
                          f"({n_weights * 2 / 1e6:.0f} MB in float16): too large for a live page (at most "
                          f"{MAX_WEIGHT_MB} MB). The live pages are for lds-mini-sized models.")


@dataclasses.dataclass
class WebExport:
    """What :func:`export_web` wrote: the folder and its manifest (``live.json``)."""

    folder: Path
    manifest: dict

    @property
    def total_bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"].values()) + (self.folder / MANIFEST).stat().st_size


def export_web(pipe, folder, *, model_name: str | None = None) -> WebExport:
    """Write the live pages' files for ``pipe`` (a loaded ``StableDiffusionPipeline``) into ``folder``."""
    import onnx

    from lds.models.tokenizer import CONTEXT_LENGTH
    from lds.pipeline.guidance import MAX_GUIDANCE
    from lds.pipeline.loading import model_source
    from lds.pipeline.sampling import MAX_PROMPT_CHARS, check_size

    _check_exportable(pipe)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(m.device.type != "cpu" or m.dtype != torch.float32 for m in (pipe.text_encoder, pipe.unet, pipe.vae)):
        import copy  # the graphs compute in float32 on the CPU; the reader's pipeline is left as it was

        pipe = copy.deepcopy(pipe).to("cpu", torch.float32)
    unet_cfg = pipe.unet.config
    height, width = check_size(pipe, None, None)
    c, h, w = unet_cfg.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor
    d = pipe.text_encoder.config.hidden_size
    ids = torch.full((1, CONTEXT_LENGTH), pipe.tokenizer.eos_token_id, dtype=torch.int64)
    sample, t, embeds = torch.zeros(2, c, h, w), torch.tensor(1, dtype=torch.int64), torch.zeros(2, CONTEXT_LENGTH, d)

    graphs = {}
    with warnings.catch_warnings():
        # The tracer warns at every Python branch on a size (diffusers has many); the sizes here are
        # fixed, and tests/test_web_export.py checks each graph against torch instead.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # dynamo=False on purpose: the TorchScript exporter's graphs are the ones measured to run in
        # onnxruntime-web with torch's numbers; torch announces its eventual removal at every call.
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        _export_graphs(graphs, pipe, ids, sample, t, embeds, c, h, w)
    attention = graphs.pop("_attention")
    for model in graphs.values():
        drop_zero_constants(model)
        weights_as_float16(model)
    share_weights({k: graphs[k] for k in ("unet", "unet_attention")}, folder, "unet.weights")

    files = {}
    for name, model in graphs.items():
        path = folder / f"{name}.onnx"
        onnx.save_model(model, str(path))
        files[name] = _file_entry(path)
    files["unet_weights"] = _file_entry(folder / "unet.weights")
    tokenizer_path = folder / "tokenizer.json"
    write_tokenizer_json(pipe.tokenizer, tokenizer_path)
    files["tokenizer"] = _file_entry(tokenizer_path)

    source = model_source(pipe)
    scheduler = pipe.scheduler
    tok = pipe.tokenizer
    manifest = {
        "format": FORMAT,
        "model": {"name": model_name or source.name, "kind": source.kind},
        "files": files,
        "tokenizer": {
            "model_max_length": tok.model_max_length,  # 77 slots: start + 75 content tokens + end
            "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
            "config": {"model_max_length": tok.model_max_length, "bos_token": tok.bos_token,
                       "eos_token": tok.eos_token, "unk_token": tok.unk_token, "pad_token": tok.pad_token,
                       "clean_up_tokenization_spaces": False},
            "max_prompt_chars": MAX_PROMPT_CHARS,
        },
        "text_encoder": {"hidden_size": d},
        "unet": {"latent_shape": [c, h, w], "cross_attention_layers": attention.layers,
                 "attention_shapes": [list(s) for s in attention.shapes],
                 "attention_sums_length": attention.sums_length, "aggregate": attention.aggregate},
        "vae": {"scaling_factor": float(pipe.vae.config.scaling_factor), "scale_factor": pipe.vae_scale_factor},
        "image": {"height": height, "width": width},
        "scheduler": {
            "class": type(scheduler).__name__,
            "config": {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")},
            "init_noise_sigma": float(scheduler.init_noise_sigma),
            # float32 values, as the scheduler holds them; written exactly (a float32 is a JSON double)
            "alphas_cumprod": [float(a) for a in scheduler.alphas_cumprod.float()],
            "final_alpha_cumprod": float(scheduler.final_alpha_cumprod),
            "eta": 0.0,
        },
        "guidance": {"formula": "noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)",
                     "max_abs": MAX_GUIDANCE},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return WebExport(folder, manifest)


def write_tokenizer_json(tokenizer, path: Path) -> None:
    """The tokenizer in the ``tokenizers`` library's ``tokenizer.json`` format, without padding or truncation.

    transformers' ``CLIPTokenizer`` is that library's tokenizer underneath (``backend_tokenizer``);
    padding to 77 and truncation are done by the page exactly as :func:`lds.models.tokenizer.tokenize`
    does them, from ``live.json``'s sizes.
    """
    backend = tokenizer.backend_tokenizer
    data = json.loads(backend.to_str())
    data["padding"], data["truncation"] = None, None
    Path(path).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def load_manifest(folder) -> dict:
    """``live.json`` of an exported folder, checked: every file present with its recorded size and sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder} does not exist. Export a model into it first: `lds export-web {folder}` "
                          "(or `make book`, which writes _build/html/_static/live/model/).")
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"{folder} holds no {MANIFEST}: it is not an export of `lds export-web`. "
                          f"Run `lds export-web {folder}` to write one.")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ExportError(f"{path} has format {manifest.get('format')!r}; this lds writes and reads format {FORMAT}. "
                          f"Export again: `lds export-web {folder}`.")
    for entry in manifest["files"].values():
        f = folder / entry["path"]
        if not f.is_file():
            raise ExportError(f"{f} is missing from the export; export again: `lds export-web {folder}`.")
        if f.stat().st_size != entry["bytes"] or hashlib.sha256(f.read_bytes()).hexdigest() != entry["sha256"]:
            raise ExportError(f"{f} is not the file that was exported (size or sha256 differ); "
                              f"export again: `lds export-web {folder}`.")
    return manifest


def install_live(html_dir, pipe, book_root) -> WebExport:
    """Put the live pages' runtime and ``pipe``'s export into a built book (``make book`` calls this).

    ``book/live/*.js`` (the runtime) goes to ``_static/live/`` and the export to
    ``_static/live/model/``; Sphinx has already copied the vendored onnxruntime-web and tokenizer
    library to ``_static/`` (``html_static_path``, book/_vendor/VENDOR.txt).
    """
    import shutil

    html_dir, source = Path(html_dir), Path(book_root) / "book" / "live"
    scripts = sorted(source.glob("*.js"))
    if not scripts:
        raise ExportError(f"{source} holds no scripts: the live pages' runtime is missing from this checkout.")
    live = html_dir / "_static" / "live"
    if live.exists():
        shutil.rmtree(live)
    live.mkdir(parents=True)
    for script in scripts:
        shutil.copy(script, live / script.name)
    return export_web(pipe, live / "model")

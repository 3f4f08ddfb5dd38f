"""lds: latent diffusion, taken apart. The companion package of the book.

Importing lds does nothing but define names: the heavy libraries (torch, diffusers) load on first
use, so ``lds --help`` is instant and a notebook pays only for what it uses.

    >>> import lds
    >>> pipe = lds.load_pipeline("lds-mini")           # a diffusers StableDiffusionPipeline
    >>> out = lds.generate(pipe, "grinning face", seed=0)
    >>> out.images[0]
"""

__version__ = "0.1.0"

_LAZY = {
    "load_pipeline": "lds.pipeline.loading",
    "ModelNotFoundError": "lds.pipeline.loading",
    "model_source": "lds.pipeline.loading",
    "generate": "lds.pipeline.sampling",
    "record_cross_attention": "lds.pipeline.attention",
    "apply_guidance": "lds.pipeline.guidance",
    "load_corpus": "lds.data.corpus",
    "show_receipt": "lds.book.receipt",
    "run_audit": "lds.audit.run",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lds' has no attribute {name!r}")

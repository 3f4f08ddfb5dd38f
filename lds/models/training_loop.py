"""What every training loop here shares: the steps, the progress bar, the loss history and the checkpoint.

Chapter 4 (The U-Net in training) shows a training step written out. Each network's training (``train_clip``,
``train_autoencoder`` and ``finetune_decoder``, ``train_unet``, ``train_on_batches``) writes its own step, what
one batch does to the weights, and hands it to :func:`run_steps`, which runs it the same way for all of them.
A loop, as in nanoGPT's ``train.py``, not a trainer class: the step keeps the optimisers, the schedule and the
EMA in plain sight.
"""

from __future__ import annotations

import numpy as np

LOG_EVERY = 50  # steps between the bar's and the log's running means (each the mean of the last 50 steps)


def run_steps(step, steps: int, series: tuple[str, ...], *, desc: str, progress: bool = True,
              shown: tuple[str, ...] | None = None, log=None, checkpoint=None, state: dict | None = None,
              rng: np.random.Generator | None = None) -> dict[str, list]:
    """Run ``step(i)`` for i = 0 .. ``steps`` - 1; returns the history, one list per name in ``series``.

    ``step(i)`` does step i and returns ``{name: value}`` (plain numbers, off the graph), appended to the history.
    Every 50 steps the bar shows the mean of the last 50 values of each series in ``shown`` (the first series if
    None), and ``log(i, means)``, if given, is called with them.

    ``checkpoint`` (an :class:`lds.training.recipe.StageCheckpoint`, or anything with its ``restore`` and ``step``)
    is handed ``state``, everything that changes as the loop trains (models, EMA weights, optimisers, schedule),
    and ``rng``, the step's numpy generator: it saves them and the history after a finished step when a save is
    due, and, if it holds a saved state, loads it before the first step, so that the run continues from the step
    it reached and computes what the uninterrupted run would have (``tests/test_train.py``).
    """
    from tqdm.auto import tqdm

    history = {name: [] for name in series}
    start, extra = checkpoint.restore(state, rng) if checkpoint else (0, {})
    if "history" in extra:
        history.update(extra["history"])
    elif "losses" in extra:  # written before the loops shared this one: train_clip's or train_unet's one series
        history[series[0]] = list(extra["losses"])
    shown = series[:1] if shown is None else shown
    bar = tqdm(range(start, steps), desc=desc, disable=not progress, initial=start, total=steps)
    for i in bar:
        for name, value in step(i).items():
            history[name].append(value)
        if i % LOG_EVERY == 0:
            means = {name: float(np.mean(history[name][-LOG_EVERY:])) for name in shown}
            bar.set_postfix({name: f"{mean:.4f}" for name, mean in means.items()})
            if log:
                log(i, means)
        if checkpoint:
            checkpoint.step(i + 1, state, rng, {"history": history})
    return history

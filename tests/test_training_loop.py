"""The training loop every network shares (lds.models.training_loop.run_steps): history, log, checkpoint, resume.

tests/test_train.py interrupts and resumes each network's own training; these test the loop on a toy step.
"""

import numpy as np
import pytest
import torch

from lds.models.training_loop import run_steps
from lds.training.recipe import StageCheckpoint


class _Stop(Exception):
    pass


class _Interrupting(StageCheckpoint):
    """Saves after step ``at`` and stops there, as Ctrl-C would."""

    def __init__(self, path, at):
        super().__init__(path, every_seconds=None, every_steps=at)
        self.at = at

    def step(self, step, *args):
        super().step(step, *args)
        if step == self.at:
            raise _Stop


def _toy(steps, checkpoint=None, log=None):
    """A linear model trained on noise drawn from both generators (numpy's and torch's), as the real steps draw."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step(i):
        x = torch.randn(4, 3) + float(rng.random())
        loss = (model(x) - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"step": i, "loss": loss.item()}

    history = run_steps(step, steps, ("loss", "step"), desc="toy", progress=False, log=log,
                        checkpoint=checkpoint, state={"model": model, "opt": opt}, rng=rng)
    return model, history


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_run_interrupted_and_resumed_equals_the_uninterrupted_one_bit_for_bit(tmp_path):
    whole, history = _toy(12)
    with pytest.raises(_Stop):
        _toy(12, _Interrupting(tmp_path / "ck.pt", 7))
    resumed, resumed_history = _toy(12, StageCheckpoint(tmp_path / "ck.pt", every_seconds=600))
    assert resumed_history == history and history["step"] == list(range(12))
    assert _same_weights(whole, resumed)


def test_log_gets_the_mean_of_the_last_50_steps_every_50_steps():
    calls = []
    _, history = _toy(101, log=lambda i, means: calls.append((i, means)))
    assert [i for i, _ in calls] == [0, 50, 100]
    assert calls[1][1] == {"loss": float(np.mean(history["loss"][1:51]))}  # the first series unless told


def test_a_checkpoint_written_before_the_shared_loop_continues_its_losses(tmp_path):
    whole, history = _toy(5)
    path = tmp_path / "ck.pt"
    with pytest.raises(_Stop):
        _toy(5, _Interrupting(path, 2))
    state = torch.load(path, weights_only=True)
    state["extra"] = {"losses": history["loss"][:2]}  # how train_clip and train_unet kept their one series
    torch.save(state, path)
    resumed, resumed_history = _toy(5, StageCheckpoint(path, every_seconds=600))
    assert resumed_history["loss"] == history["loss"] and resumed_history["step"] == [2, 3, 4]
    assert _same_weights(whole, resumed)

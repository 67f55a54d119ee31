import pytest
import torch

from tests.conftest import Identity
from vdenoise.bench.datasets import open_dataset
from vdenoise.bench.metrics import psnr
from vdenoise.bench.protocol import (
    BaselineMethod,
    ModelMethod,
    averages,
    conditions,
    run_protocol,
)
from vdenoise.training.evaluate import corrupt

CPU = torch.device("cpu")


class Recorder:
    """A method that keeps what it was given and returns the input."""

    def __init__(self, name="recorder"):
        self.name, self.seen = name, []

    def __call__(self, noisy, sigma):
        self.seen.append((noisy.clone(), sigma))
        return noisy

    def describe(self):
        return {"name": self.name}


def test_awgn_conditions_at_each_sigma_and_a_full_spec_as_one():
    assert [c.label for c in conditions([10, 30])] == ["sigma 10", "sigma 30"]
    assert [c.sigma for c in conditions([10, 30], "correlated")] == [10, 30]
    (single,) = conditions([10, 30], "poisson-gaussian:0.01,5")
    assert single.label == "poisson-gaussian:0.01,5" and single.sigma is None


def test_every_method_gets_the_same_seeded_unclipped_noise_and_the_true_sigma(set8):
    data = open_dataset("set8", set8)
    first, second = Recorder("a"), Recorder("b")
    run_protocol(data, [first, second], conditions([30]), frames=4, seed=7)
    for (x, s), (y, t) in zip(first.seen, second.seen, strict=True):
        assert torch.equal(x, y) and s == t == pytest.approx(30)
    clean = data.sequences[0].frames(4).float() / 255
    expected, _ = corrupt(clean, conditions([30])[0].noise, seed=7)
    assert torch.equal(first.seen[0][0], expected)  # same seed, same noise
    assert first.seen[0][0].min() < 0 or first.seen[0][0].max() > 1  # not clipped
    again = Recorder()
    run_protocol(data, [again], conditions([30]), frames=4, seed=8)
    assert not torch.equal(again.seen[0][0], expected)


def test_eight_bit_input_is_the_same_noise_rounded_and_clipped(set8):
    """The second protocol: what an 8-bit file holds of the papers' noisy frames."""
    data = open_dataset("set8", set8)
    papers, eight_bit = Recorder(), Recorder()
    run_protocol(data, [papers], conditions([30]), frames=3, seed=7)
    (condition,) = conditions([30], eight_bit=True)
    assert condition.label == "sigma 30, 8-bit" and condition.sigma == 30
    run_protocol(data, [eight_bit], [condition], frames=3, seed=7)
    unclipped, quantised = papers.seen[0][0], eight_bit.seen[0][0]
    assert quantised.min() == 0 and quantised.max() == 1  # clipped where the noise overshoots
    assert torch.equal(quantised * 255, (quantised * 255).round())
    assert torch.equal(quantised, (unclipped * 255).round().clamp(0, 255) / 255)
    assert eight_bit.seen[0][1] == papers.seen[0][1]  # the same level is given


def test_scores_per_frame_then_sequence(set8):
    data = open_dataset("set8", set8)
    noisy = BaselineMethod("noisy", lambda n, s: n, "the input")
    scores = run_protocol(data, [noisy], conditions([20]), frames=3, seed=0)
    assert len(scores) == 4 and {s.frames for s in scores} == {3}
    clean = data.sequences[0].frames(3).float() / 255
    noisy_frames, _ = corrupt(clean, conditions([20])[0].noise, 0)
    by_hand = sum(psnr(n, c) for n, c in zip(noisy_frames, clean, strict=True)) / 3
    assert scores[0].psnr == pytest.approx(by_hand)
    (mean,) = averages(scores)
    assert mean["psnr"] == pytest.approx(sum(s.psnr for s in scores) / 4)
    assert mean["flicker"] == pytest.approx(sum(s.flicker for s in scores) / 4)
    assert 20 < mean["flicker"] < 30  # the noisy input: independent noise of sigma 20
    assert mean["sequences"] == 4
    assert noisy.timer.frames == 12 and noisy.timer.fps > 0


def test_a_model_runs_through_the_engine_and_is_timed(set8):
    data = open_dataset("set8", set8)
    model = ModelMethod("identity", Identity(), CPU, torch.float32)
    scores = run_protocol(data, [model], conditions([10]), frames=5, seed=0)
    noisy = BaselineMethod("noisy", lambda n, s: n, "")
    reference = run_protocol(data, [noisy], conditions([10]), frames=5, seed=0)
    assert [s.psnr for s in scores] == pytest.approx([s.psnr for s in reference])
    assert model.describe()["model_fps"] > 0

from dataclasses import replace

import pytest
import torch

from tests.training.test_losses import textured_clip
from vdenoise.bench.metrics import psnr
from vdenoise.checkpoint import load_checkpoint, read_metadata
from vdenoise.errors import UsageError
from vdenoise.models import build
from vdenoise.models.f2r import F2R, PRESETS
from vdenoise.models.flow import ByDevice
from vdenoise.noise import NoiseModel
from vdenoise.training.data import ClipSampler
from vdenoise.training.evaluate import denoise_frames
from vdenoise.training.trainer import WARMUP_STEPS, Trainer, TrainSettings, resume_path


def sequences(motion=2):
    clean, _, _ = textured_clip(batch=1, frames=8, size=40, motion=motion)
    return [(clean[0] * 255).round().to(torch.uint8)]


def make_trainer(tmp_path, method="f2r", refiner="sure", steps=6, **kw):
    settings = TrainSettings(
        steps=steps, batch=2, crop=32, noise="gaussian:25", refiner_loss=refiner, **kw
    )
    frames = 5 if method == "f2r" else 3
    sampler = ClipSampler(sequences(), frames, settings.crop, seed=0)
    model = build(method, "tiny")
    return Trainer(model, sampler, settings, tmp_path / "out.safetensors", torch.device("cpu"))


class Counting:
    """A flow estimator that counts its calls (no motion)."""

    def __init__(self, name):
        self.name, self.calls = name, 0

    def __repr__(self):
        return f"Counting({self.name!r})"

    def __call__(self, target, source):
        self.calls += 1
        return target.new_zeros(target.shape[0], 2, *target.shape[-2:])


@pytest.mark.parametrize(("all_flows", "calls"), [(True, (3, 3)), (False, (6, 0))])
def test_live_flows_come_from_each_estimator_the_model_may_meet_in_turn(tmp_path, all_flows, calls):
    settings = TrainSettings(
        steps=6, batch=2, crop=32, noise="gaussian:25", refiner_loss="sure", all_flows=all_flows
    )
    cpu, gpu = Counting("cpu"), Counting("gpu")
    model = build("f2r", "tiny")
    model.flow = chosen = ByDevice(cpu, gpu)  # DIS on CPUs, the torch flow on GPUs, say
    sampler = ClipSampler(sequences(), 5, settings.crop, seed=0)
    trainer = Trainer(model, sampler, settings, tmp_path / "o.safetensors", torch.device("cpu"))
    trainer.run()
    assert (cpu.calls, gpu.calls) == calls  # all: one estimator a step, in turn; else the CPU's
    assert model.flow is chosen


class StopAt:
    """An observer that presses Ctrl-C at a given step."""

    def __init__(self, step):
        self.step = step

    def note(self, message):
        pass

    def start(self, total, unit, done):
        self.began = done

    def update(self, done, phase, loss):
        if done >= self.step:
            raise KeyboardInterrupt

    def stop(self):
        pass


@pytest.mark.parametrize(
    ("method", "refiner", "phases"),
    [
        ("f2r", "sure", ["anchor", "refine"]),
        ("f2r", "adaptive", ["anchor", "local", "refine"]),
        ("f2r", "measured", ["anchor", "refine", "joint"]),
        ("stbn", "auto", ["nll"]),
    ],
)
def test_a_run_writes_a_checkpoint_that_loads_and_denoises(tmp_path, method, refiner, phases):
    joint = 0.5 if "joint" in phases else 0.0
    trainer = make_trainer(tmp_path, method, refiner, steps=10, joint_share=joint)
    report = trainer.run()
    assert report.steps == 10 and list(report.losses) == phases
    model = load_checkpoint(tmp_path / "out.safetensors")
    training = read_metadata(tmp_path / "out.safetensors")["training"]
    assert [p["name"] for p in training["phases"]] == phases
    assert sum(p["steps"] for p in training["phases"]) == 10
    clean = sequences()[0][:6].float() / 255
    out = denoise_frames(model, clean + 0.1 * torch.randn_like(clean), 25.5, torch.device("cpu"))
    assert out.shape == clean.shape and torch.isfinite(out).all()


def test_phases_share_the_budget_in_order(tmp_path):
    trainer = make_trainer(tmp_path, steps=10)
    trainer.run()
    assert [(p.name, p.steps) for p in trainer.phases] == [("anchor", 6), ("refine", 4)]


def test_stage_one_is_frozen_while_the_refiner_trains(tmp_path):
    trainer = make_trainer(tmp_path, steps=10, anchor_share=0.0)
    before = {k: v.clone() for k, v in trainer.model.estimator.state_dict().items()}
    trainer.run()
    after = trainer.model.estimator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_joint_fine_tuning_trains_both_stages_last(tmp_path):
    trainer = make_trainer(tmp_path, steps=10, anchor_share=0.0, joint_share=0.3)
    estimator = {k: v.clone() for k, v in trainer.model.estimator.state_dict().items()}
    refiner = {k: v.clone() for k, v in trainer.model.refiner.state_dict().items()}
    trainer.run()
    assert [(p.name, p.steps) for p in trainer.phases] == [
        ("anchor", 0),
        ("refine", 7),
        ("joint", 3),
    ]
    after = trainer.model.state_dict()
    assert any(not torch.equal(v, after[f"estimator.{k}"]) for k, v in estimator.items())
    assert any(not torch.equal(v, after[f"refiner.{k}"]) for k, v in refiner.items())


def test_joint_fine_tuning_refuses_the_adaptive_loss(tmp_path):
    with pytest.raises(ValueError, match="joint"):
        make_trainer(tmp_path, refiner="adaptive", joint_share=0.3)


def test_each_phase_starts_with_a_rising_rate(tmp_path, monkeypatch):
    rates = []
    step = torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path, method="stbn", steps=1000, lr=1e-3).run(StopAt(3))
    assert rates[0] == pytest.approx(1e-3 / WARMUP_STEPS)  # not the full rate at once
    assert rates == pytest.approx([1e-3 * k / WARMUP_STEPS for k in (1, 2, 3)], rel=1e-4)


def test_ctrl_c_leaves_a_usable_checkpoint_and_resume_finishes_the_budget(tmp_path):
    trainer = make_trainer(tmp_path, steps=10)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(StopAt(7))
    assert trainer.report.interrupted
    load_checkpoint(tmp_path / "out.safetensors")  # usable as is
    saved = read_metadata(tmp_path / "out.safetensors")["training"]["phases"]
    assert [p["steps"] for p in saved] == [6, 1]
    assert resume_path(tmp_path / "out.safetensors").exists()

    again = make_trainer(tmp_path, steps=10)
    again.resume()
    assert [p.steps for p in again.phases] == [6, 1] and again.phase_index == 1
    assert again.optimizer is not None and len(again.optimizer.state) > 0  # Adam moments back
    weights = {k: v.clone() for k, v in again.model.state_dict().items()}
    interrupted = load_checkpoint(tmp_path / "out.safetensors").state_dict()
    assert all(torch.equal(weights[k], interrupted[k]) for k in weights)
    observer = StopAt(99)
    report = again.run(observer)
    assert observer.began == 7 and report.steps == 10
    assert [p.steps for p in again.phases] == [6, 4]


def test_resume_refuses_a_run_with_other_phases(tmp_path):
    make_trainer(tmp_path, steps=4).run()
    other = make_trainer(tmp_path, refiner="adaptive", steps=4)
    with pytest.raises(UsageError, match="other phases"):
        other.resume()


def test_training_on_noisy_clips_improves_the_anchor(tmp_path):
    """A few hundred small steps on a static scene beat the noisy input by a wide margin."""
    trainer = make_trainer(tmp_path, steps=200, lr=2e-3)
    trainer.sampler.sequences = sequences(motion=0)
    trainer.run()
    clean = sequences(motion=0)[0].float() / 255
    g = torch.Generator().manual_seed(5)
    noisy = clean + torch.randn(clean.shape, generator=g) * 25 / 255
    out = denoise_frames(trainer.model, noisy, 25, torch.device("cpu"))
    assert psnr(out, clean) > psnr(noisy, clean) + 2


def test_on_noisy_footage_stage_two_trains_with_sure_for_the_measured_noise(tmp_path):
    noisy = sequences()[0].float() + torch.randn(8, 3, 40, 40, generator=torch.Generator()) * 25
    trainer = make_trainer(tmp_path, refiner="auto", steps=6, sigma=25.0)
    trainer.noise = NoiseModel.parse("none")
    trainer.settings.noise = "none"
    trainer.sampler.sequences = [noisy.clamp(0, 255).round().to(torch.uint8)]
    assert [p.name for p in trainer.phases] == ["anchor", "refine"]
    trainer.run()
    training = read_metadata(tmp_path / "out.safetensors")["training"]
    assert training["refiner_loss"] == "measured"
    assert training["noise_profile"] == trainer.profile.as_dict()
    assert trainer.profile.level == pytest.approx(25, rel=0.5)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_a_share_of_training_clips_is_rounded_and_clipped_to_8_bits(tmp_path, share):
    trainer = make_trainer(tmp_path, eight_bit_share=share)
    anchor, refine = trainer.phases
    noisy = torch.cat([trainer._batch(anchor)[0] for _ in range(20)])  # 40 clips
    on_grid = [bool(((c * 255) == (c * 255).round()).all() and c.min() >= 0 and c.max() <= 1)
               for c in noisy]  # fmt: skip
    assert sum(on_grid) / len(on_grid) == pytest.approx(share, abs=0.2)
    assert all(on_grid) == (share == 1.0) and any(on_grid) == (share > 0)
    stage_two = torch.cat([trainer._batch(refine)[0] for _ in range(5)])
    assert stage_two.min() < 0 or stage_two.max() > 1  # SURE's noise: never clipped


def test_the_gate_learns_at_its_own_rate(tmp_path):
    def one_step(rate):
        torch.manual_seed(0)
        config = replace(PRESETS["tiny"], spatial_fallback=True, fallback_posterior=True)
        settings = TrainSettings(
            steps=1, batch=2, crop=32, noise="gaussian:25", anchor_share=0.0, gate_rate=rate
        )
        sampler = ClipSampler(sequences(), 5, settings.crop, seed=0)
        model = F2R(config)
        start = model.refiner.net.dec0[-2].weight.detach().clone()
        Trainer(
            model, sampler, settings, tmp_path / f"{rate}.safetensors", torch.device("cpu")
        ).run()
        return model.refiner.net.dec0[-2].weight.detach() - start

    plain, fast = one_step(1.0), one_step(5.0)
    assert plain[12:].abs().max() > 0
    torch.testing.assert_close(fast[12:], 5 * plain[12:], rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(fast[:12], plain[:12], rtol=0, atol=0)

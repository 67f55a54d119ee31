import weakref

import pytest
import torch

from tests.training.test_trainer import Counting, sequences
from vdenoise.models import build
from vdenoise.models.flow import ByDevice
from vdenoise.training.data import ClipSampler
from vdenoise.training.stage1_bank import Stage1Bank, symmetry
from vdenoise.training.trainer import Trainer, TrainSettings


def test_the_eight_symmetries_differ_and_keep_every_value():
    x = torch.arange(9.0).view(1, 3, 3)
    turned = [symmetry(x, t) for t in range(8)]
    assert torch.equal(turned[0], x)
    assert len({tuple(t.flatten().tolist()) for t in turned}) == 8
    assert all(torch.equal(t.flatten().sort().values, x.flatten()) for t in turned)


def test_building_keeps_copies_of_the_windows_not_their_whole_clips():
    clips, alive = [], []

    def draw(turn):
        clips.append(weakref.ref(clip := torch.zeros(2, 3, 64, 64)))
        return torch.zeros(2, 9, 16, 16), clip[:, :, 16:32, 16:32], torch.ones(2)

    Stage1Bank.build(draw, 8, lambda done, total: alive.append(sum(c() is not None for c in clips)))
    assert alive == [1, 1, 1, 1]  # only the clip just drawn: the bank holds none


def test_a_bank_holds_what_it_was_asked_for_and_draws_from_it():
    calls = []

    def draw(turn):
        calls.append(turn)
        value = (10.0 * len(calls) + torch.arange(3.0)).view(3, 1, 1, 1)  # one per window
        return value.expand(3, 9, 4, 4), value.expand(3, 3, 4, 4), torch.ones(3)

    bank = Stage1Bank.build(draw, 7)
    assert calls == [0, 1, 2] and len(bank) == 7 and bank.stage1.dtype == torch.float16
    batch = bank.draw(5, torch.Generator().manual_seed(0))
    assert batch.stage1.shape == (5, 9, 4, 4) and batch.centre.shape == (5, 3, 4, 4)
    held = batch.centre[:, 0, 0, 0].tolist()  # windows drawn once each, from the bank's 7
    assert len(set(held)) == 5 and set(held) <= {10.0, 11.0, 12.0, 20.0, 21.0, 22.0, 30.0}
    assert torch.equal(batch.stage1[:, 0, 0, 0], batch.centre[:, 0, 0, 0])  # kept together


def make(tmp_path, flow, bank, steps=6):
    settings = TrainSettings(
        steps=steps, batch=2, crop=32, noise="gaussian:25", refiner_loss="sure",
        anchor_share=0.0, refiner_bank=bank, all_flows=True,
    )  # fmt: skip
    model = build("f2r", "tiny")
    model.flow = flow
    sampler = ClipSampler(sequences(), 5, settings.crop, seed=0)
    return Trainer(model, sampler, settings, tmp_path / "o.safetensors", torch.device("cpu"))


def test_with_a_bank_stage_one_and_its_flows_run_only_to_build_it(tmp_path):
    cpu, gpu = Counting("cpu"), Counting("gpu")
    trainer = make(tmp_path, ByDevice(cpu, gpu), bank=4, steps=6)
    refiner = {k: v.clone() for k, v in trainer.model.refiner.state_dict().items()}
    report = trainer.run()
    # two batches of two windows, one from each estimator the model may meet; none in the steps
    assert (cpu.calls, gpu.calls) == (1, 1) and len(trainer.bank) == 4
    assert report.steps == 6
    after = trainer.model.refiner.state_dict()
    assert any(not torch.equal(v, after[k]) for k, v in refiner.items())


def test_without_a_bank_each_step_runs_the_flows(tmp_path):
    counting = Counting("one")
    make(tmp_path, counting, bank=0, steps=6).run()
    assert counting.calls == 6


def test_a_bank_needs_an_f2r_without_a_centre_view(tmp_path):
    settings = TrainSettings(steps=2, batch=2, crop=32, noise="gaussian:25", refiner_bank=4)
    sampler = ClipSampler(sequences(), 3, settings.crop, seed=0)
    with pytest.raises(ValueError, match="bank"):
        Trainer(build("stbn", "tiny"), sampler, settings, tmp_path / "o", torch.device("cpu"))

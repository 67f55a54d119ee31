from dataclasses import replace

import pytest
import torch

from tests.textures import moving_texture
from vdenoise.models.f2r import F2R, PRESETS
from vdenoise.models.flow import ByDevice, DISFlow, PairCache, warp_bilinear
from vdenoise.models.pyramid_flow import PyramidFlow
from vdenoise.noise import NoiseModel
from vdenoise.training import flow_cache
from vdenoise.training.data import ClipSampler
from vdenoise.training.flow_cache import FlowCache, augment_flow
from vdenoise.training.losses import flow_pairs


class Counting(DISFlow):
    calls = 0

    def __call__(self, target, source):
        Counting.calls += len(target)
        return super().__call__(target, source)


@pytest.fixture(scope="module")
def sequence():
    clean, _ = moving_texture(frames=12, size=64, step=2)
    return (clean[0] * 255).round().to(torch.uint8)


def test_flows_are_computed_once_then_read_from_the_cache(sequence, tmp_path):
    Counting.calls = 0
    first = FlowCache.build([sequence], Counting(), tmp_path)
    assert Counting.calls == 2 * 11  # each consecutive pair, both ways, once
    again = FlowCache.build([sequence], Counting(), tmp_path)
    assert Counting.calls == 22 and torch.equal(first.ahead[0], again.ahead[0])
    FlowCache.build([sequence], Counting(smooth=2.0), tmp_path)  # other settings: another key
    assert Counting.calls == 44 and len(list(tmp_path.glob("*.safetensors"))) == 2


def test_flows_across_frame_steps_follow_the_motion(sequence, tmp_path):
    """Texture sliding 2 px a frame to the right: the flow from frame t to t+s is (2s, 0)."""
    cache = FlowCache.build([sequence], DISFlow(), tmp_path)
    for target, source in [(3, 4), (3, 6), (8, 5), (2, 10)]:
        flow = cache.flow(0, target, source, 16, 16, (32, 32))
        expected = 2.0 * (source - target)
        assert abs(flow[0].median() - expected) < 0.3 and flow[1].abs().median() < 0.3


@pytest.mark.parametrize("ops", [["flip_x"], ["flip_y", "transpose"], ["transpose", "flip_x"]])
def test_an_augmented_flow_aligns_the_augmented_frames(ops):
    clean, _ = moving_texture(frames=2, size=48, step=3)
    flow = DISFlow()(clean[0, :1], clean[0, 1:])[0]
    frames = clean[0]
    for op in ops:
        frames = {"flip_x": frames.flip(-1), "flip_y": frames.flip(-2)}.get(op, frames.mT)
    moved = augment_flow(flow, ops)
    warped, _ = warp_bilinear(frames[1:], moved[None])
    error = (warped - frames[:1]).abs()[..., 8:-8, 8:-8].mean()
    assert error < 0.02 < (frames[1] - frames[0]).abs()[..., 8:-8, 8:-8].mean()


def test_sampled_flows_align_each_clips_frames_whatever_the_step_and_augmentation(
    sequence, tmp_path
):
    model = F2R(PRESETS["tiny"])
    sampler = ClipSampler([sequence], 5, 40, seed=3, steps=(1, 2, 3))
    sampler.flow_caches = [FlowCache.build([sequence], DISFlow(), tmp_path)]
    pairs = flow_pairs(model, 5)
    assert pairs == [(2, 0), (2, 1), (2, 4), (2, 3)]  # as F2R.flows orders them
    clips, flows = sampler.sample_with_flows(16, pairs)
    assert flows is not None and flows.shape == (16, 4, 2, 40, 40)
    for clip, clip_flows in zip(clips, flows, strict=True):
        for (target, source), flow in zip(pairs, clip_flows, strict=True):
            warped, _ = warp_bilinear(clip[source][None], flow[None])
            error = (warped[0] - clip[target]).abs()[..., 8:-8, 8:-8].mean()
            assert error < 0.03, (target, source, error)


def test_stbn_pairs_and_an_aligning_f2rs_windows():
    model = F2R(replace(PRESETS["tiny"], neighbours=1))
    assert flow_pairs(model, 4) == [(1, 0), (1, 2), (2, 1), (2, 3)]
    from vdenoise.models.stbn import PRESETS as STBN_PRESETS
    from vdenoise.models.stbn import STBN

    assert flow_pairs(STBN(STBN_PRESETS["tiny"]), 3) == [(1, 0), (2, 1), (0, 1), (1, 2)]


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VDENOISE_CACHE", str(tmp_path))
    assert flow_cache.default_folder() == tmp_path / "flows"


def test_the_estimators_a_model_may_meet_are_all_cached_once_each():
    dis, pyramid = DISFlow(), PyramidFlow()
    assert flow_cache.leaves(PairCache(dis)) == [dis]
    assert flow_cache.leaves(ByDevice(PairCache(dis), pyramid)) == [dis, pyramid]
    assert flow_cache.leaves(ByDevice(dis, DISFlow())) == [dis]  # the same settings: one cache


def test_each_clip_draws_its_flows_from_one_of_the_caches(sequence):
    n, _, h, w = sequence.shape
    still = torch.zeros(n - 1, 2, h // 2, w // 2, dtype=torch.float16)
    caches = [FlowCache([still], [still]), FlowCache([still + 1], [still - 1])]
    sampler = ClipSampler([sequence], 3, 16, augment=False, seed=1)
    sampler.flow_caches = caches
    _, flows = sampler.sample_with_flows(32, [(1, 0)])
    moved = flows.abs().flatten(1).amax(1) > 0.5
    assert 0 < int(moved.sum()) < 32  # both caches drawn from


def test_noisy_copies_are_seeded_8_bit_and_noisy_as_drawn(sequence):
    noise = NoiseModel.parse("gaussian:5-55")
    first = flow_cache.noisy_copies([sequence, sequence], noise, seed=0)
    again = flow_cache.noisy_copies([sequence, sequence], noise, seed=0)
    assert all(a.dtype == torch.uint8 for a in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    spread = [float((a.float() - sequence.float()).std()) for a in first]
    assert all(4 < s < 56 for s in spread) and abs(spread[0] - spread[1]) > 0.5  # own sigmas
    assert not torch.equal(flow_cache.noisy_copies([sequence], noise, seed=1)[0], first[0])

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.textures import moving_texture
from vdenoise.engine import Engine
from vdenoise.errors import UsageError
from vdenoise.models.f2r import F2R, PRESETS
from vdenoise.models.flow import PairCache, compose, fingerprints
from vdenoise.models.pyramid_flow import PyramidFlow
from vdenoise.models.stbn import PRESETS as PRESETS_STBN
from vdenoise.models.stbn import STBN
from vdenoise.training.flow_cache import describe_estimator


class Recorder:
    """A flow estimator (zero flow) that records every pair of frames it is asked for."""

    def __init__(self) -> None:
        self.pairs: list[tuple] = []

    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        keys = fingerprints(torch.cat([target, source]))
        self.pairs += list(zip(keys[: len(target)], keys[len(target) :], strict=True))
        return target.new_zeros(target.shape[0], 2, *target.shape[-2:])


def test_each_flow_of_a_video_is_computed_once():
    """F2R matches only consecutive frames and composes the farther flows (`compose_flows`,
    the default); across windows and model calls each pair is matched once: at most 2 flows a
    frame (direct flows: 4 a frame)."""
    assert F2R(PRESETS["small"]).compose_flows
    assert isinstance(F2R(PRESETS["small"]).flow, PairCache)
    recorder = Recorder()
    model = F2R(PRESETS["small"], flow=PairCache(recorder))
    frames = moving_texture(frames=12, size=32)[1][0]
    out = list(Engine(model, torch.device("cpu"), tile=0).run(iter(frames), 0.1))
    assert len(out) == 12
    assert len(recorder.pairs) == len(set(recorder.pairs))  # none twice
    assert len(recorder.pairs) <= 2 * 12
    assert model.flow.requested == 4 * 12 and model.flow.computed == len(recorder.pairs)


def test_f2rs_direct_flows_are_each_computed_once():
    """Without composition, each window asks for its own 4 pairs; none is matched twice (the
    reflected windows at the ends ask for some twice), so at most 4 flows a frame."""
    recorder = Recorder()
    model = F2R(PRESETS["small"], flow=PairCache(recorder))
    model.compose_flows = False
    frames = moving_texture(frames=12, size=32)[1][0]
    list(Engine(model, torch.device("cpu"), tile=0).run(iter(frames), 0.1))
    assert len(recorder.pairs) == len(set(recorder.pairs)) <= 4 * 12


def test_stbn_matches_each_pair_once_across_its_warm_up_frames():
    """STBN's chunks overlap by their warm-up frames; their flows are not matched again."""
    recorder = Recorder()
    model = STBN(PRESETS_STBN["tiny"], flow=PairCache(recorder))
    frames = moving_texture(frames=40, size=32)[1][0]
    out = list(Engine(model, torch.device("cpu"), tile=0).run(iter(frames), 0.1))
    assert len(out) == 40
    assert len(recorder.pairs) == len(set(recorder.pairs))
    assert len(recorder.pairs) <= 2 * 40 < model.flow.requested


def test_the_cache_tells_frames_apart_by_one_value():
    recorder = Recorder()
    cache = PairCache(recorder)
    a = torch.rand(1, 3, 16, 16)
    b = a.clone()
    b[0, 1, 7, 9] += 1 / 255
    cache(a, a)
    cache(a, b)
    cache(a, a)
    assert cache.computed == 2 and cache.requested == 3


def test_the_cache_forgets_pairs_after_two_calls():
    recorder = Recorder()
    cache = PairCache(recorder)
    a, b, c = torch.rand(3, 1, 3, 16, 16)
    cache(a, b)
    cache(b, c)
    cache(c, a)
    cache(a, b)
    assert cache.computed == 4 and len(cache._memo().flows) == 2


def test_composed_flow_follows_two_steps():
    """Flows a -> b and b -> c composed: constant steps add up."""

    first = torch.tensor([1.5, -2.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    second = torch.tensor([0.5, 1.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    total = compose(first, second)
    assert torch.allclose(total, torch.tensor([2.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8))


def test_the_default_estimators_describe_themselves_the_same_in_every_process(monkeypatch):
    """Training's flow cache keys on the estimator's settings (describe_estimator)."""
    monkeypatch.setenv("VDENOISE_FLOW", "dis")
    text = describe_estimator(F2R(PRESETS["small"]).flow)
    assert "0x" not in text and "PyramidFlow" not in text and "DISFlow" in text
    monkeypatch.delenv("VDENOISE_FLOW", raising=False)  # auto: DIS on CPUs, else PyramidFlow
    text = describe_estimator(F2R(PRESETS["small"]).flow)
    assert "0x" not in text and "PyramidFlow" in text and "DISFlow" in text
    assert describe_estimator(STBN(PRESETS_STBN["tiny"]).flow).count("PyramidFlow") == 1
    monkeypatch.setenv("VDENOISE_FLOW", "pyramid")
    flow = F2R(PRESETS["small"]).flow
    assert isinstance(flow, PairCache) and isinstance(flow.estimator, PyramidFlow)


def test_an_unknown_flow_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("VDENOISE_FLOW", "raft")
    with pytest.raises(UsageError, match="VDENOISE_FLOW must be one of auto, dis, pyramid"):
        F2R(PRESETS["small"])


def test_frames_are_told_apart_under_half_precision_autocast():
    a = torch.rand(1, 3, 64, 64)
    b = a.clone()
    b[0, 0, 5, 5] += 1 / 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        keys = fingerprints(torch.cat([a, b]))
    assert keys[0] != keys[1]


def test_fingerprints_tell_one_value_apart_at_full_size_wherever_the_frame_lies():
    """Block sums in float32: a change of 1/255 in one of 921,600 values still shows, and a
    copy of a frame at another place in memory (another alignment) has the same key."""
    frames = torch.rand(2, 3, 480, 640, generator=torch.Generator().manual_seed(1))
    buffer = torch.empty(frames.numel() + 3)
    moved = buffer[3:].view_as(frames)
    moved.copy_(frames)
    assert fingerprints(moved) == fingerprints(frames)
    changed = frames.clone()
    changed[1, 2, 479, 639] -= 1 / 255
    keys, other = fingerprints(frames), fingerprints(changed)
    assert keys[0] == other[0] and keys[1][0] != other[1][0] and keys[1][1] != other[1][1]
    odd = torch.rand(1, 3, 17, 19)  # not a whole number of blocks
    bumped = odd.clone()
    bumped[0, 2, 16, 18] += 1 / 255
    assert fingerprints(odd) != fingerprints(bumped)


def test_threads_sharing_a_cache_keep_their_own_memos():
    """Files in flight share one model (`batch`): each thread reuses its own pairs, and one
    thread's calls do not push another's pairs out."""
    recorder = Recorder()
    cache = PairCache(recorder)
    a, b, c, d = torch.rand(4, 1, 3, 16, 16)
    cache(a, b)  # this thread's pair
    with ThreadPoolExecutor(1) as other:
        for pair in [(c, d), (d, c), (c, d)]:
            other.submit(cache, *pair).result()
    cache(a, b)  # still remembered here: the other thread's three calls were its own
    assert cache.computed == 3 and cache.requested == 5

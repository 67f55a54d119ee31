import pytest
import torch

from tests.conftest import Identity, LocalBlur, TemporalMean
from vdenoise.engine import MAX_FRAMES_PER_CALL, Engine, reflect_index
from vdenoise.errors import VdenoiseError

CPU = torch.device("cpu")


def frames(n: int, size: tuple[int, int] = (8, 10)) -> list[torch.Tensor]:
    """Frame i is filled with the value i, so outputs reveal which frames were used."""
    return [torch.full((3, *size), float(i)) for i in range(n)]


def test_reflect_index():
    assert [reflect_index(i, 5) for i in range(-3, 8)] == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    assert [reflect_index(i, 1) for i in (-2, 0, 2)] == [0, 0, 0]
    assert [reflect_index(i, 2) for i in range(-2, 4)] == [0, 1, 0, 1, 0, 1]
    assert reflect_index(-2, None) == 2 and reflect_index(7, None) == 7


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
@pytest.mark.parametrize("per_call", [1, 3, 4])
def test_one_output_per_frame_in_order(n, per_call):
    engine = Engine(Identity(2, 2, per_call), CPU)
    out = list(engine.run(frames(n), sigma=0.1))
    assert [int(o[0, 0, 0]) for o in out] == list(range(n))
    assert engine.stats.frames == n


def test_temporal_context_is_reflected_at_both_ends():
    out = [float(o[0, 0, 0]) for o in Engine(TemporalMean(2, 2, 3), CPU).run(frames(6), 0.0)]
    # frame 0 sees 2,1,0,1,2; frame 5 sees 3,4,5,4,3
    assert out == pytest.approx([1.2, 1.4, 2.0, 3.0, 3.6, 3.8])


def test_asymmetric_context():
    out = [float(o[0, 0, 0]) for o in Engine(TemporalMean(0, 2, 2), CPU).run(frames(4), 0.0)]
    assert out == pytest.approx([1.0, 2.0, 7 / 3, 2.0])  # 0,1,2 / 1,2,3 / 2,3,2 / 3,2,1


def test_memory_holds_only_the_window():
    """The engine pulls frames lazily: never more than the window ahead of its output."""
    pulled = []

    def source():
        for i, f in enumerate(frames(50)):
            pulled.append(i)
            yield f

    engine = Engine(Identity(2, 2, 4), CPU)
    for k, _ in enumerate(engine.run(source(), 0.0)):
        assert len(pulled) - k <= 2 + 4 + 2


def test_tiled_output_equals_whole_frames():
    torch.manual_seed(0)
    video = [torch.rand(3, 70, 90) for _ in range(3)]
    whole = list(Engine(LocalBlur(), CPU, tile=0).run(video, 0.0))
    tiled_engine = Engine(LocalBlur(), CPU, tile=32)
    tiled = list(tiled_engine.run(video, 0.0))
    assert tiled_engine.stats.tile == 64  # raised to the smallest tile the engine uses
    for a, b in zip(whole, tiled, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


class RunsOutOfMemory(Identity):
    """Fails like a GPU allocation whenever a tile is wider than `limit` pixels."""

    def __init__(self, limit: int) -> None:
        super().__init__(0, 0, 1)
        self.limit, self.widths = limit, []

    def forward(self, clip, sigma):
        self.widths.append(clip.shape[-1])
        if clip.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(clip, sigma)


def test_out_of_memory_retries_with_smaller_tiles():
    model = RunsOutOfMemory(limit=100)
    engine = Engine(model, CPU, tile=0)
    video = [torch.rand(3, 200, 400) for _ in range(2)]
    out = list(engine.run(video, 0.0))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out, video, strict=True))
    assert engine.stats.tile == 96 and engine.stats.oom_retries == 2  # 400 -> 192 -> 96


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    engine = Engine(RunsOutOfMemory(limit=10), CPU, tile=0)
    with pytest.raises(VdenoiseError, match="out of memory"):
        list(engine.run([torch.rand(3, 200, 400)], 0.0))


def test_auto_tile_follows_free_memory(monkeypatch):
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 1 << 40)
    engine = Engine(Identity(1, 1, 1), CPU)
    assert engine.choose_tile(torch.Size([1, 3, 3, 1080, 1920])) == 0
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 200 << 20)
    tile = engine.choose_tile(torch.Size([1, 3, 3, 1080, 1920]))
    assert 64 <= tile < 1080 and tile % 16 == 0


def test_model_errors_that_are_bugs_are_not_swallowed():
    class Broken(Identity):
        def forward(self, clip, sigma):
            raise ValueError("shape bug")

    with pytest.raises(ValueError, match="shape bug"):
        list(Engine(Broken(), CPU).run(frames(3), 0.0))


def test_half_precision_runs_under_autocast():
    seen = []

    class Records(Identity):
        def forward(self, clip, sigma):
            seen.append(
                torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
            )
            return super().forward(clip, sigma)

    out = list(Engine(Records(0, 0, 1), CPU, dtype=torch.bfloat16).run(frames(2), 0.0))
    assert seen == [torch.bfloat16, torch.bfloat16] and out[0].dtype == torch.float32


class CallMean(Identity):
    """Every output of a call is the mean of the whole clip it was given: the output depends
    on which call a frame falls in, as a recurrent model's carried state does."""

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n = clip.shape[1] - self.frames_before - self.frames_after
        return clip.mean(1, keepdim=True).expand(-1, n, -1, -1, -1)


def test_skipped_context_frames_start_the_calls_where_a_whole_run_has_them():
    model = CallMean(2, 2, 3)
    whole = [float(o[0, 0, 0]) for o in Engine(model, CPU).run(frames(12), 0.0)]
    # A segment from frame 6 (on the grid of 3), reading 2 frames of context before it.
    tail = [float(o[0, 0, 0]) for o in Engine(model, CPU).run(frames(12)[4:], 0.0, skip=2)]
    assert tail == pytest.approx(whole[6:])
    cold = [float(o[0, 0, 0]) for o in Engine(model, CPU).run(frames(12)[6:], 0.0)]
    assert cold != pytest.approx(whole[6:])  # without the context, the first call differs


class Windowed(Identity):
    independent_windows = True


def test_accelerators_get_more_frames_a_call_while_whole_frames_fit(monkeypatch):
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 1 << 40)
    engine = Engine(Windowed(2, 2, 4), CPU)
    assert engine.frames_per_call(1080, 1920) == 4  # a CPU keeps the model's
    engine.device = torch.device("cuda")  # only its type is read
    assert engine.frames_per_call(1080, 1920) == MAX_FRAMES_PER_CALL
    # 64 bytes a pixel a frame, 0.7 of free memory: 8 frames a call and 4 of context fit
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 12 * 64 * 100 / 0.7 + 1)
    assert engine.frames_per_call(10, 10) == 8
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 1 << 10)
    assert engine.frames_per_call(1080, 1920) == 4  # tiles, at the model's own count
    engine.model = Identity(2, 2, 4)  # its calls carry state: never regrouped
    monkeypatch.setattr("vdenoise.engine.free_memory", lambda device: 1 << 40)
    assert engine.frames_per_call(1080, 1920) == 4


@pytest.mark.parametrize("per_call", [4, 16])
def test_more_frames_a_call_give_every_frame_once_in_order(monkeypatch, per_call):
    monkeypatch.setattr(Engine, "frames_per_call", lambda self, h, w: per_call)
    engine = Engine(Windowed(2, 2, 4), CPU)
    out = list(engine.run(frames(21), sigma=0.1))
    assert [int(o[0, 0, 0]) for o in out] == list(range(21))
    assert engine.stats.frames_per_call == per_call
    assert engine.stats.calls == -(-21 // per_call)
    assert list(engine.run(iter(()), sigma=0.1)) == []

"""The corpus of bad, odd and hostile input, run through the real command in its own process.

Every case must end with one error line (a hint in brackets at most), the right exit code
(2 usage, 1 runtime, 130 interrupted), no traceback, no crash, and nothing left on disk: no
partial output, no temporary file, and an existing output untouched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.clipmaker import ClipSpec, make_clip
from vdenoise.checkpoint import read_header

# The installed console script, as users run it (its entry point handles signals from the first
# instant; `python -m` would add the interpreter's own KeyboardInterrupt handling around it).
COMMAND = str(Path(sys.executable).with_name("vdenoise"))


def vdenoise(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [COMMAND, *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() if p.is_file() else b"" for p in sorted(folder.iterdir())}


def assert_one_error_line(stderr: str, stdout: str = "") -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum("error" in line.lower() for line in lines) == 1, stderr
    for crash in ("Traceback", "Segmentation fault", "core dumped", "Aborted!"):
        assert crash not in stderr + stdout, stderr
    return lines[-1]


@dataclass
class Corpus:
    """Inputs of every kind, built once; `out` is where outputs go (checked to stay as is)."""

    root: Path
    clip: Path
    out: Path
    existing: Path
    images: Path
    fifo: Path
    f2r: Path
    stbn: Path


def _write_checkpoint(source: Path, target: Path, **metadata: str) -> Path:
    header = read_header(source)[0]["__metadata__"]
    save_file(load_file(str(source)), str(target), metadata={**header, **metadata})
    return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, checkpoints) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    clip = make_clip(root / "clip.mp4", ClipSpec(frames=8, audio="aac"))
    images = root / "frames"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"{i:03d}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    os.mkfifo(root / "pipe.mp4")
    out = root / "out"
    out.mkdir()
    (out / "taken.mp4").write_bytes(b"the user's earlier work")
    _bad_inputs(root, clip, checkpoints["f2r"][1])
    return Corpus(
        root, clip, out, out / "taken.mp4", images, root / "pipe.mp4",
        checkpoints["f2r"][1], checkpoints["stbn"][1],
    )  # fmt: skip


def _bad_inputs(root: Path, clip: Path, f2r: Path) -> None:
    (root / "empty.mp4").write_bytes(b"")
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "text.mp4").write_text("this is not a video\n")
    data = clip.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    with av.open(str(root / "audio.m4a"), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 44100, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    make_clip(root / "tiny.mp4", ClipSpec(frames=6, width=8, height=8))
    with av.open(str(root / "zero-frames.mp4"), "w") as out:  # a recording stopped at once
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    for name in ("no-images", "mixed"):
        (root / name).mkdir()
    (root / "no-images" / "notes.txt").write_text("x")
    cv2.imwrite(str(root / "mixed" / "000.png"), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(root / "mixed" / "001.png"), np.zeros((16, 16, 3), np.uint8))
    torch.save({"weight": torch.zeros(4)}, root / "pickle.pt")
    tampered = bytearray(f2r.read_bytes())
    start = read_header(f2r)[1]
    for i in range(16):
        tampered[start + 101 * i] ^= 0xFF
    (root / "tampered.safetensors").write_bytes(bytes(tampered))
    _write_checkpoint(f2r, root / "no-method.safetensors", method="")
    _write_checkpoint(f2r, root / "config-not-json.safetensors", config="{width: 8")
    _write_checkpoint(f2r, root / "negative.safetensors", config='{"width": -8}')
    _write_checkpoint(f2r, root / "absurd.safetensors", config='{"width": 1000000000}')
    _write_checkpoint(f2r, root / "profile.safetensors", training='{"noise_profile": "loud"}')
    (root / "cut.safetensors").write_bytes(f2r.read_bytes()[:200])


USAGE, RUNTIME = 2, 1
D = "denoise {clip} {out}/o.mp4"  # the commonest start of a case
W = D + " --weights {root}/"  # ... with a checkpoint from the corpus

# (name, the command with {fields} of the corpus, exit code, what the error line says)
CASES: list[tuple[str, str, int, str]] = [
    # the input
    ("missing", "denoise {root}/nope.mp4 {out}/o.mp4", USAGE, "does not exist"),
    ("fifo", "denoise {fifo} {out}/o.mp4", USAGE, "not a regular file"),
    ("fifo-probe", "probe {fifo}", USAGE, "not a regular file"),
    ("device", "denoise /dev/zero {out}/o.mp4", USAGE, "not a regular file"),
    ("empty-file", "denoise {root}/empty.mp4 {out}/o.mp4", RUNTIME, "not a readable video"),
    ("random-bytes", "denoise {root}/noise.mp4 {out}/o.mp4", RUNTIME, "not a readable video"),
    ("text-file", "probe {root}/text.mp4", RUNTIME, "not a readable video"),
    ("truncated", "denoise {root}/truncated.mp4 {out}/o.mp4", RUNTIME, "truncated.mp4"),
    ("audio-only", "denoise {root}/audio.m4a {out}/o.mp4", RUNTIME, "no video stream"),
    ("zero-frames", "denoise {root}/zero-frames.mp4 {out}/o.mp4", RUNTIME, "empty or unfinished"),
    ("no-images", "denoise {root}/no-images {out}/o.mp4", RUNTIME, "holds no images"),
    ("mixed-sizes", "denoise {root}/mixed {out}/o.mp4 --sigma 5", RUNTIME, "unlike the first"),
    # options
    ("fps-tiny", "denoise {images} {out}/o.mp4 --fps 0.0001", USAGE, "--fps"),
    ("fps-nan", "denoise {images} {out}/o.mp4 --fps nan", USAGE, "--fps"),
    ("fps-inf", "denoise {images} {out}/o.mp4 --fps inf", USAGE, "--fps"),
    ("fps-on-video", D + " --fps 25", USAGE, "image-sequence input only"),
    ("start-past-end", D + " --start 1000", USAGE, "past the end"),
    ("start-negative", D + " --start -3", USAGE, "is not a time"),
    ("end-before-start", D + " --start 0.2 --end 0.1", USAGE, "--end"),
    ("sigma-nan", D + " --sigma nan", USAGE, "--sigma"),
    ("sigma-huge", D + " --sigma 300", USAGE, "--sigma"),
    ("crf-negative", D + " --crf -40", USAGE, "refused the encoder settings --crf -40"),
    ("encoder-opt", D + " --encoder-opt preset=bogus", USAGE, "preset=bogus"),
    ("encoder-opt-form", D + " --encoder-opt novalue", USAGE, "KEY=VALUE"),
    ("codec", D + " --codec bogus", USAGE, "unknown video encoder"),
    ("pix-fmt", D + " --pix-fmt bogus", USAGE, "cannot encode bogus"),
    ("tile", D + " --tile big", USAGE, "--tile"),
    ("device-name", D + " --device tpu", USAGE, "unknown device"),
    ("method", D + " --method bm3d", USAGE, "unknown method"),
    # the output
    ("output-is-input", "denoise {clip} {clip}", USAGE, "overwrite the input"),
    ("output-exists", "denoise {clip} {existing}", USAGE, "already exists"),
    ("output-folder-missing", "denoise {clip} {out}/no/o.mp4", USAGE, "does not exist"),
    ("output-format", "denoise {clip} {out}/o.xyz", USAGE, "cannot tell the video format"),
    # weights
    ("weights-missing", W + "x.safetensors", USAGE, "does not exist"),
    ("weights-device", D + " --weights /dev/zero", USAGE, "not a checkpoint file"),
    ("weights-pickle", W + "pickle.pt", RUNTIME, "pickled PyTorch file"),
    ("weights-tampered", W + "tampered.safetensors", RUNTIME, "altered after it was saved"),
    ("weights-no-method", W + "no-method.safetensors", RUNTIME, "unknown method"),
    ("weights-config", W + "config-not-json.safetensors", RUNTIME, "config is not JSON"),
    ("weights-negative", W + "negative.safetensors", RUNTIME, "width is not a whole number"),
    ("weights-absurd", W + "absurd.safetensors", RUNTIME, "width is not a whole number"),
    ("weights-profile", W + "profile.safetensors", RUNTIME, "noise profile"),
    ("weights-cut", W + "cut.safetensors", RUNTIME, "not a usable vdenoise checkpoint"),
    ("weights-method", D + " --weights {stbn} --method f2r", USAGE, "holds stbn weights"),
    # the other commands
    ("fit-tiny", "fit {root}/tiny.mp4 -o {out}/t.safetensors --steps 1", USAGE, "too small"),
    ("fit-fifo", "fit {fifo} -o {out}/t.safetensors --steps 1", USAGE, "not a regular file"),
    ("train-missing", "train {root}/no -o {out}/t.safetensors --steps 1", USAGE, "does not exist"),
    ("bench-dataset", "bench --dataset nope", USAGE, "unknown dataset"),
    ("verify-junk", "models verify {root}/noise.mp4", RUNTIME, "not a usable vdenoise checkpoint"),
    ("card-missing", "models card {root}/none.safetensors", USAGE, "does not exist"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_fails_in_one_line_and_leaves_nothing(corpus, case):
    _, command, code, message = case
    before, inputs = listing(corpus.out), listing(corpus.root)
    result = vdenoise(*command.format(**vars(corpus)).split(), cwd=corpus.root)
    assert result.returncode == code, result.stderr
    assert message in assert_one_error_line(result.stderr, result.stdout)
    assert listing(corpus.out) == before and listing(corpus.root) == inputs


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


def test_a_long_output_name_that_the_file_system_allows_works(corpus, tmp_path):
    """The temporary file's name does not grow with the output's (255 bytes is the limit)."""
    name = "x" * 246 + ".mp4"  # 250 characters
    result = vdenoise(
        "denoise", corpus.clip, tmp_path / name, "--weights", corpus.f2r, "--sigma", "5",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 8 and report["weights"] == str(corpus.f2r)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_an_unverifiable_checkpoint_is_said_once(corpus, tmp_path):
    old = tmp_path / "old.safetensors"
    header = read_header(corpus.f2r)[0]["__metadata__"]
    del header["tensor_sha256"]
    save_file(load_file(str(corpus.f2r)), str(old), metadata=header)
    result = vdenoise(
        "denoise", corpus.clip, tmp_path / "o.mp4", "--weights", old, "--sigma", "5",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("saved before checkpoints carried a digest") == 1


# -- signals: at any moment of a run, SIGINT and SIGTERM alike end with 130 and nothing left ----
MOMENTS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 3.5, 5.0)  # seconds after launch


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough that the bundled default weights are still denoising at 5 s."""
    folder = tmp_path_factory.mktemp("long")
    return make_clip(folder / "long.mp4", ClipSpec(frames=300, width=320, height=240))


def signalled(args: list, folder: Path, moment: float, signum: int) -> tuple[int, str, str]:
    """Run vdenoise in `folder`, send it `signum` `moment` seconds after launch: its exit code,
    stdout and stderr."""
    process = subprocess.Popen(
        [COMMAND, *map(str, args)], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(moment)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_exits_130_with_nothing_left(long_clip, tmp_path, signum):
    failures = []
    for moment in MOMENTS:
        folder = tmp_path / f"at-{moment}"
        folder.mkdir()
        code, stdout, stderr = signalled(["denoise", long_clip, "o.mp4"], folder, moment, signum)
        left = sorted(p.name for p in folder.iterdir())
        if code != 130 or left or "Traceback" in stderr:
            failures.append((moment, code, left, stderr[-300:]))
        else:
            assert_one_error_line(stderr, stdout)
    assert not failures


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_run_in_segments_stops_its_workers_with_nothing_left(
    long_clip, tmp_path, signum
):
    for moment in (1.0, 4.0):  # while planning; while the workers denoise their segments
        folder = tmp_path / f"at-{moment}"
        folder.mkdir()
        command = ["denoise", long_clip, "o.mp4", "--jobs", "2"]
        code, stdout, stderr = signalled(command, folder, moment, signum)
        assert code == 130, stderr
        assert sorted(p.name for p in folder.iterdir()) == [], moment
        assert_one_error_line(stderr, stdout)

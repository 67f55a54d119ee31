"""The benchmark datasets, read from the layouts they ship in.

- Set8 (FastDVDnet's test set: 4 GoPro + 4 Derf sequences, 960x540): `ROOT/Set8/<seq>/`,
  `ROOT/<seq>/`, or `ROOT/GoPro/<seq>/` + `ROOT/Derfs/<seq>/`.
- DAVIS-2017 test-dev 480p (30 sequences, 854x480): `ROOT/JPEGImages/480p/<seq>/`, also under
  `ROOT/DAVIS/`.
- A folder: any folder of frame folders or clean video files.

Frames are sorted by name in natural order (copies number them differently) and the first 85
are used, as STBN and FloRNN do (methods.md 1.9).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vdenoise.errors import UsageError
from vdenoise.training.data import IMAGE_SUFFIXES, find_sequences, frame_files, read_sequence

MAX_FRAMES = 85
SET8 = ("hypersmooth", "motorbike", "rafting", "snowboard", "park_joy", "sunflower",
        "touchdown", "tractor")  # fmt: skip
DAVIS_TEST_DEV = 30  # sequences
DATASETS = ("set8", "davis", "folder")
ROOT_VARIABLE = "VDENOISE_DATA"

WHERE = {
    "set8": "Set8 is FastDVDnet's test set (download link in the FastDVDnet and FloRNN READMEs); "
    "lay it out as ROOT/Set8/<sequence>/<frames>, or ROOT/GoPro/<sequence> + ROOT/Derfs/<sequence>",
    "davis": "DAVIS-2017 test-dev 480p is published at https://davischallenge.org "
    "(DAVIS-2017-test-dev-480p.zip); unzip it so that ROOT/DAVIS/JPEGImages/480p/<sequence>/ "
    "holds the frames",
    "folder": "give --root a folder of sequences: frame folders or clean video files",
}


@dataclass(frozen=True)
class BenchSequence:
    name: str
    path: Path

    def frames(self, limit: int | None = MAX_FRAMES) -> torch.Tensor:
        """The first `limit` frames, uint8 RGB [N, 3, H, W]."""
        return read_sequence(self.path, limit)


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    sequences: tuple[BenchSequence, ...]
    expected: int | None = None  # sequences in the published set (None: a user folder)

    @property
    def full(self) -> bool:
        return self.expected is None or len(self.sequences) == self.expected

    @property
    def label(self) -> str:
        """The name, and how much of it was found when it is not the whole published set."""
        if self.full:
            return self.name
        return f"{self.name} ({len(self.sequences)}/{self.expected} sequences)"

    def fingerprint(self, limit: int | None = MAX_FRAMES) -> str:
        """sha256 over the names and sizes of the files read: two copies of a dataset that
        differ here will not give the same numbers."""
        digest = hashlib.sha256()
        for sequence in self.sequences:
            files = (
                frame_files(sequence.path)[:limit] if sequence.path.is_dir() else [sequence.path]
            )
            for file in files:
                digest.update(f"{sequence.name}/{file.name}:{file.stat().st_size}\n".encode())
        return digest.hexdigest()


def _is_sequence(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_sequence(p)) if folder.is_dir() else []


def dataset_root(root: Path | None, name: str) -> Path:
    """--root, else $VDENOISE_DATA; a clear error saying where to get the data otherwise."""
    if root is None and os.environ.get(ROOT_VARIABLE):
        root = Path(os.environ[ROOT_VARIABLE])
    if root is None:
        raise UsageError(f"no data for {name}: give --root or set {ROOT_VARIABLE}", WHERE[name])
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder", WHERE[name])
    return root


def open_dataset(name: str, root: Path | None) -> Dataset:
    """The sequences of dataset `name` found under `root`."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}", f"choose from {', '.join(DATASETS)}")
    base = dataset_root(root, name)
    if name == "set8":
        found = _set8(base)
        expected: int | None = len(SET8)
    elif name == "davis":
        found = _davis(base)
        expected = DAVIS_TEST_DEV
    else:
        found = find_sequences(base)
        expected = None
    if not found:
        raise UsageError(f"no {name} sequences under {base}", WHERE[name])
    sequences = tuple(BenchSequence(_name(p), p) for p in sorted(found, key=_name))
    return Dataset(name, base, sequences, expected)


def _name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _set8(base: Path) -> list[Path]:
    for folder in (base / "Set8", base):
        split = _subfolders(folder / "GoPro") + _subfolders(folder / "Derfs")
        known = [p for p in _subfolders(folder) if p.name.lower() in SET8]
        if split or known:
            return split or known
    return []


def _davis(base: Path) -> list[Path]:
    for folder in (base / "JPEGImages" / "480p", base / "DAVIS" / "JPEGImages" / "480p", base):
        if found := _subfolders(folder):
            return found
    return []

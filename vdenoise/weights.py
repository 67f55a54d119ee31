"""The registry of released weights and where to find them (no torch: `models list` is fast).

A released checkpoint is found, in order: in the repository's `weights/` folder (bundled), in
the Hugging Face cache, or downloaded from the Hub at a pinned commit. Its sha256 is checked on
every load (`checkpoint.load_checkpoint`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from vdenoise.errors import VdenoiseError

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Release:
    """A published checkpoint: where it lives and what it is."""

    name: str
    method: str
    filename: str
    sha256: str
    license: str
    training_data: str
    default_for: tuple[str, ...] = ()  # device types (cpu, cuda, mps) where `--method` uses it
    repo_id: str | None = None  # on the Hugging Face Hub (None: bundled in weights/ only)
    revision: str | None = None  # a full 40-hex commit: cached files are used without asking


TRAINPACK = (
    "19 clean sequences, 1,436 frames (DAVIS-2016 val 480p, DAVIS bus) with synthetic white "
    "Gaussian noise, sigma 5-55 per clip; self-supervised (noisy frames only)"
)

TRAINPACK_8BIT = TRAINPACK + "; stage 1 on 8-bit clips (rounded and clipped) half the time"
TRAINPACK_8BIT_CLIPS = TRAINPACK + "; 8-bit clips (rounded and clipped) half the time"

# Trained self-supervised on noisy versions of clean video; each has a model card in weights/.
RELEASES: tuple[Release, ...] = (
    Release(
        name="f2r-small",
        method="f2r",
        filename="f2r-small.safetensors",
        sha256="d4e6cefec59569eeab2dc0d2fa9aedcb797477d42184b1c56ba0c73d212d78dc",
        license="Apache-2.0",
        training_data=TRAINPACK_8BIT,
        # The CPU preset (over 2 frames/s at 640x480 on 2 cores), and for now the GPU default
        # too: it beats the unaligned f2r-base it replaced there by 3.1 dB (bench, sigma 30).
        default_for=("cpu", "cuda", "mps"),
    ),
    Release(
        name="stbn-tiny",
        method="stbn",
        filename="stbn-tiny.safetensors",
        sha256="b8bd12416b4c6a396fc6362b54730f2528732562b09be0dd6882cb8aedfdf002",
        license="Apache-2.0",
        training_data=TRAINPACK_8BIT_CLIPS,
        # The CPU preset, and for now the GPU default too: it beats the stbn-small trained on
        # an H200 with the paper's head (29.5 against 26.4 dB validation at sigma 30).
        default_for=("cpu", "cuda", "mps"),
    ),
)


def bundled_dir() -> Path:
    """Where bundled checkpoints live: $VDENOISE_WEIGHTS, else the repository's weights/."""
    return Path(os.environ.get("VDENOISE_WEIGHTS", REPO_ROOT / "weights"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the registry -------------------------------------------------------------------------------
def find_release(name: str) -> Release | None:
    return next((r for r in RELEASES if r.name == name), None)


def default_release(method: str, device_type: str = "cpu") -> Release | None:
    """The release `--method` uses without --weights on this kind of device: the one made its
    default there, else any default of the method."""
    defaults = [r for r in RELEASES if r.method == method and r.default_for]
    return next((r for r in defaults if device_type in r.default_for), None) or next(
        iter(defaults), None
    )


def is_offline(offline: bool = False) -> bool:
    return offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def locate(release: Release, cache_dir: Path | None = None) -> tuple[Path, str] | None:
    """(path, 'bundled' | 'cache') of a release already on this machine, without network."""
    bundled = bundled_dir() / release.filename
    if bundled.is_file():
        return bundled, "bundled"
    if release.repo_id is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(
        release.repo_id, release.filename, cache_dir=cache_dir, revision=release.revision
    )
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached), "cache"
    return None


def download(release: Release, cache_dir: Path | None = None, offline: bool = False) -> Path:
    """The release's file from the Hugging Face Hub at its pinned commit (or the cache)."""
    if release.repo_id is None:
        raise VdenoiseError(
            f"{release.name} ships in vdenoise's weights/ folder and is not on the Hub; "
            f"{release.filename} is missing from {bundled_dir()}",
            "reinstall vdenoise from its repository, or set VDENOISE_WEIGHTS to where the file is",
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            hf_hub_download(
                release.repo_id,
                release.filename,
                revision=release.revision,
                cache_dir=cache_dir,
                local_files_only=is_offline(offline),
            )
        )
    except LocalEntryNotFoundError:
        raise VdenoiseError(
            f"{release.name} is not on this machine and downloads are off (offline)",
            f"run `vdenoise models download {release.name}` where the Hub can be reached, "
            f"or put {release.filename} in {bundled_dir()}",
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise VdenoiseError(
            f"cannot download {release.name} from {release.repo_id} ({e.__class__.__name__})",
            f"check the connection, or put {release.filename} in {bundled_dir()}",
        ) from None


def release_path(release: Release, cache_dir: Path | None = None, offline: bool = False) -> Path:
    found = locate(release, cache_dir)
    return found[0] if found else download(release, cache_dir, offline)

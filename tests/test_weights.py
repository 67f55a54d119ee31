import os

import pytest

from vdenoise import weights
from vdenoise.checkpoint import load_model
from vdenoise.errors import VdenoiseError
from vdenoise.weights import Release

REVISION = "0123456789abcdef0123456789abcdef01234567"


# -- the registry: bundled folder, Hugging Face cache, Hub --------------------------------------
def release_of(path, digest) -> Release:
    return Release(
        name="f2r-test",
        method="f2r",
        filename=path.name,
        sha256=digest,
        repo_id="vdenoise/test-weights",
        revision=REVISION,
        license="Apache-2.0",
        training_data="none (test)",
        default_for=("cpu",),
    )


def hub_cache(root, release, source):
    """A cache laid out exactly as huggingface_hub lays it out (blob + relative symlink)."""
    repo = root / f"models--{release.repo_id.replace('/', '--')}"
    blob = repo / "blobs" / release.sha256
    blob.parent.mkdir(parents=True)
    blob.write_bytes(source.read_bytes())
    snapshot = repo / "snapshots" / release.revision
    snapshot.mkdir(parents=True)
    (snapshot / release.filename).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(release.revision)
    return root


@pytest.fixture
def registered(checkpoints, monkeypatch, tmp_path):
    _, path, digest = checkpoints["f2r"]
    release = release_of(path, digest)
    monkeypatch.setattr(weights, "RELEASES", (release,))
    monkeypatch.setenv("VDENOISE_WEIGHTS", str(tmp_path / "bundled"))
    return release, path


def test_bundled_file_comes_first(registered, tmp_path):
    release, path = registered
    (tmp_path / "bundled").mkdir()
    (tmp_path / "bundled" / release.filename).write_bytes(path.read_bytes())
    assert weights.locate(release) == (tmp_path / "bundled" / release.filename, "bundled")
    model, source = load_model("f2r")
    assert source.startswith("f2r-test") and type(model).__name__ == "F2R"


def test_hub_cache_is_found_offline_through_the_real_library(registered, tmp_path, monkeypatch):
    import huggingface_hub.constants

    release, path = registered
    cache = hub_cache(tmp_path / "hf", release, path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = weights.locate(release)
    assert found is not None and found[1] == "cache"
    assert found[0] == cache / "models--vdenoise--test-weights" / "snapshots" / REVISION / path.name
    assert weights.download(release) == found[0]  # hf_hub_download, offline, from the cache
    model, _ = load_model()  # the default release
    assert type(model).__name__ == "F2R"


def test_damaged_cached_file_fails_its_checksum(registered, tmp_path, monkeypatch):
    import huggingface_hub.constants

    release, path = registered
    bad = tmp_path / "bad.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    cache = hub_cache(tmp_path / "hf", release, bad)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(VdenoiseError, match="sha256"):
        load_model()


def test_offline_and_not_cached_names_the_download_command(registered, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(VdenoiseError, match="offline") as info:
        load_model(offline=True)
    assert "vdenoise models download f2r-test" in info.value.hint


def test_a_bundled_only_release_is_found_in_weights_and_missed_clearly(
    checkpoints, monkeypatch, tmp_path
):
    _, path, digest = checkpoints["f2r"]
    release = Release(
        name="f2r-bundled",
        method="f2r",
        filename=path.name,
        sha256=digest,
        license="Apache-2.0",
        training_data="none (test)",
        default_for=("cpu",),
    )
    monkeypatch.setattr(weights, "RELEASES", (release,))
    monkeypatch.setenv("VDENOISE_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(VdenoiseError, match="ships in vdenoise's weights/ folder"):
        load_model("f2r")
    monkeypatch.setenv("VDENOISE_WEIGHTS", str(path.parent))
    model, source = load_model("f2r")
    assert type(model).__name__ == "F2R" and source.startswith("f2r-bundled (")


def test_the_default_release_depends_on_the_device(checkpoints, monkeypatch):
    _, path, digest = checkpoints["f2r"]
    fast, best = (
        Release(
            name=name,
            method="f2r",
            filename=path.name,
            sha256=digest,
            license="Apache-2.0",
            training_data="none (test)",
            default_for=devices,
        )
        for name, devices in (("f2r-fast", ("cpu",)), ("f2r-best", ("cuda", "mps")))
    )
    monkeypatch.setattr(weights, "RELEASES", (fast, best))
    assert weights.default_release("f2r", "cpu") is fast
    assert weights.default_release("f2r", "cuda") is best
    assert weights.default_release("stbn", "cuda") is None
    monkeypatch.setattr(weights, "RELEASES", (fast,))
    assert weights.default_release("f2r", "cuda") is fast  # no GPU default: any default

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from vdenoise import weights
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.models import build
from vdenoise.weights import Release, load_checkpoint, load_model, save_checkpoint

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    out = {}
    for method in ("f2r", "stbn"):
        model = build(method, "tiny")
        path = folder / f"{method}-tiny.safetensors"
        out[method] = (model, path, save_checkpoint(model, path, {"noise": "awgn 5-55"}))
    return out


@pytest.mark.parametrize("method", ["f2r", "stbn"])
def test_checkpoint_rebuilds_the_same_model(checkpoints, method):
    model, path, digest = checkpoints[method]
    assert digest == weights.file_sha256(path)
    loaded = load_checkpoint(path, expected_sha256=digest)
    meta = weights.read_metadata(path)
    assert meta["method"] == method and meta["preset"] == "tiny"
    assert meta["training"] == {"noise": "awgn 5-55"}
    clip = torch.rand(1, 11, 3, 20, 24)
    with torch.no_grad():
        assert torch.equal(
            model.eval()(clip, torch.tensor([0.1])), loaded(clip, torch.tensor([0.1]))
        )


def test_no_pickle_is_ever_loaded(checkpoints, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", refuse)
    load_checkpoint(checkpoints["f2r"][1])


def test_bad_files_are_refused_clearly(checkpoints, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(VdenoiseError, match="not a safetensors checkpoint"):
        load_checkpoint(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(1)}, str(bare))
    with pytest.raises(VdenoiseError, match="not a vdenoise checkpoint"):
        load_checkpoint(bare)
    with pytest.raises(VdenoiseError, match="sha256"):
        load_checkpoint(checkpoints["f2r"][1], expected_sha256="0" * 64)
    with pytest.raises(UsageError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_the_architecture(checkpoints, tmp_path):
    _, path, _ = checkpoints["f2r"]
    meta = weights.read_metadata(path)
    raw = {k: v for k, v in meta.items() if k not in ("config", "training")}
    raw |= {"config": json.dumps(meta["config"]), "training": "{}"}  # says tiny...
    wrong = tmp_path / "wrong.safetensors"
    save_file(build("f2r", "base").state_dict(), str(wrong), metadata=raw)  # ...holds base
    with pytest.raises(VdenoiseError, match="does not fit"):
        load_checkpoint(wrong)


def test_nothing_released_says_so(monkeypatch):
    monkeypatch.setattr(weights, "RELEASES", ())
    with pytest.raises(VdenoiseError, match="no trained f2r weights"):
        load_model()
    with pytest.raises(UsageError, match="unknown method"):
        load_model("nope")


def test_method_must_match_the_file(checkpoints):
    with pytest.raises(UsageError, match="holds f2r weights"):
        load_model("stbn", checkpoints["f2r"][1])
    model, source = load_model(None, checkpoints["stbn"][1])
    assert type(model).__name__ == "STBN" and source.endswith("stbn-tiny.safetensors")


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


def test_a_fitted_checkpoint_brings_its_noise_level_function(tmp_path):
    model = build("f2r", "tiny")
    table = [0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 1.5, 2.0]
    profile = {"colour": torch.eye(3).tolist(), "correlation": [[1.0]], "relative_variance": table}
    path = tmp_path / "fit.safetensors"
    save_checkpoint(model, path, {"kind": "fit", "sigma": 12.0, "noise_profile": profile})
    assert load_checkpoint(path).relative_variance.tolist() == table
    save_checkpoint(model, path, {"kind": "fit", "sigma": 12.0, "noise_profile": None})
    assert load_checkpoint(path).relative_variance is None

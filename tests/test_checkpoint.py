import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vdenoise import checkpoint, weights
from vdenoise.checkpoint import load_checkpoint, load_model, save_checkpoint
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.models import build


@pytest.mark.parametrize("method", ["f2r", "stbn"])
def test_checkpoint_rebuilds_the_same_model(checkpoints, method):
    model, path, digest = checkpoints[method]
    assert digest == weights.file_sha256(path)
    loaded = load_checkpoint(path, expected_sha256=digest)
    meta = checkpoint.read_metadata(path)
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
    with pytest.raises(VdenoiseError, match="not a usable vdenoise checkpoint"):
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
    meta = checkpoint.read_metadata(path)
    raw = {k: v for k, v in meta.items() if k not in ("config", "training", checkpoint.DIGEST_KEY)}
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


def test_a_fitted_checkpoint_brings_its_noise_level_function(tmp_path):
    model = build("f2r", "tiny")
    table = [0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 1.5, 2.0]
    profile = {"colour": torch.eye(3).tolist(), "correlation": [[1.0]], "relative_variance": table}
    path = tmp_path / "fit.safetensors"
    save_checkpoint(model, path, {"kind": "fit", "sigma": 12.0, "noise_profile": profile})
    assert load_checkpoint(path).relative_variance.tolist() == table
    save_checkpoint(model, path, {"kind": "fit", "sigma": 12.0, "noise_profile": None})
    assert load_checkpoint(path).relative_variance is None


def raw_copy(path, tmp_path, name="edited.safetensors", **changes):
    """A copy of a checkpoint with metadata fields replaced (raw strings), tensors untouched."""
    meta = checkpoint.read_header(path)[0]["__metadata__"] | changes
    edited = tmp_path / name
    save_file(load_file(str(path)), str(edited), metadata=meta)
    return edited


def test_flipped_bytes_in_the_tensors_are_refused(checkpoints, tmp_path):
    """Any file, registered or not: the digest saved in its metadata covers every tensor byte."""
    _, path, _ = checkpoints["f2r"]
    data = bytearray(path.read_bytes())
    offset = checkpoint.read_header(path)[1]
    for i in range(16):  # 16 bytes flipped in the tensor data, as a bad disk or a tamperer would
        data[offset + 97 * i] ^= 0xFF
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(data))
    with pytest.raises(VdenoiseError, match="altered after it was saved"):
        load_checkpoint(tampered)
    assert load_checkpoint(path).checkpoint["unverified"] is False


def test_a_file_saved_before_digests_loads_unverified(checkpoints, tmp_path):
    _, path, _ = checkpoints["stbn"]
    meta = checkpoint.read_header(path)[0]["__metadata__"]
    old = tmp_path / "old.safetensors"
    meta = {k: v for k, v in meta.items() if k != checkpoint.DIGEST_KEY}
    save_file(load_file(str(path)), str(old), metadata=meta)
    assert load_checkpoint(old).checkpoint["unverified"] is True


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "bm3d"}, "unknown method"),
        ({"config": "{not json"}, "config is not JSON"),
        ({"config": "[1, 2]"}, "config is not a JSON object"),
        ({"config": '{"width": -8}'}, "width is not a whole number"),
        ({"config": '{"width": 100000000}'}, "width is not a whole number"),
        ({"config": '{"width": 8.5}'}, "width is not a whole number"),
        ({"config": '{"align": "yes"}'}, "align is not true or false"),
        ({"config": '{"highpass_sigma": "NaN"}'}, "not a finite number"),
        ({"config": '{"wings": 2}'}, "unknown f2r setting"),
        ({"training": '{"noise_profile": [1, 2]}'}, "noise profile is not a JSON object"),
        ({"training": '{"noise_profile": {"relative_variance": "x"}}'}, "variance table"),
        ({"training": '{"kind": "fit", "sigma": "loud"}'}, "fitted noise level"),
        ({"training": '{"kind": "fit", "sigma": 1e9}'}, "fitted noise level"),
    ],
)
def test_malformed_metadata_is_refused_in_one_line(checkpoints, tmp_path, changes, message):
    edited = raw_copy(checkpoints["f2r"][1], tmp_path, **changes)
    with pytest.raises(VdenoiseError, match=message) as caught:
        load_checkpoint(edited)
    assert "\n" not in str(caught.value)


def test_a_declared_size_is_checked_before_anything_is_allocated(checkpoints, tmp_path):
    """A config that names a model larger than the file's tensors is refused on the meta
    device, before the model is built (a width of 1024 would otherwise be allocated)."""
    edited = raw_copy(checkpoints["f2r"][1], tmp_path, config='{"width": 1024}')
    with pytest.raises(VdenoiseError, match="does not fit its declared architecture"):
        load_checkpoint(edited)


def test_pickles_and_truncated_files_are_named_for_what_they_are(checkpoints, tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickled)
    with pytest.raises(VdenoiseError, match="pickled PyTorch file"):
        load_checkpoint(pickled)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(checkpoints["f2r"][1].read_bytes()[:100])
    with pytest.raises(VdenoiseError, match="not a usable vdenoise checkpoint"):
        load_checkpoint(cut)

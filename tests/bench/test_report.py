import json

import cv2
import pytest

from vdenoise.bench.report import SCHEMA_VERSION, markdown, merge, plot, to_json


def document(full=True, name="set8", flicker=True):
    sequences = [{"name": "a", "frames": 3, "height_width": [48, 64]},
                 {"name": "b", "frames": 3, "height_width": [48, 64]}]  # fmt: skip
    scores, means = [], []
    for method, base in [("noisy", 20.0), ("f2r", 30.0)]:
        for c, sigma in [("sigma 10", 10), ("sigma 30", 30)]:
            for i, seq in enumerate("ab"):
                value = base - sigma / 10 + i
                scores.append({"method": method, "condition": c, "sequence": seq, "sigma": sigma,
                               "psnr": value, "ssim": 0.5, "frames": 3})  # fmt: skip
                if flicker:
                    scores[-1]["flicker"] = sigma * (1.2 if method == "noisy" else 0.1)
            means.append({"method": method, "condition": c, "psnr": base - sigma / 10 + 0.5,
                          "ssim": 0.5, "sequences": 2})  # fmt: skip
            if flicker:
                means[-1]["flicker"] = sigma * (1.2 if method == "noisy" else 0.1)
    return {
        "dataset": {
            "name": name,
            "label": name if full else f"{name} (2/8 sequences)",
            "full": full,
            "sequences": sequences,
        },
        "protocol": {"conditions": ["sigma 10", "sigma 30"]},
        "methods": [
            {"name": "noisy", "fps": 1000.0},
            {"name": "f2r", "model_fps": 3.0, "end_to_end_fps": 2.5},
        ],
        "scores": scores,
        "averages": means,
        "machine": {"device": "cpu (2 threads)", "precision": "fp32", "versions": "torch x"},
        "memory": {"peak_host_bytes": 2**30, "peak_gpu_bytes": None},
    }


def test_markdown_has_a_row_per_method_and_a_column_per_sigma():
    text = markdown(document(full=False))
    assert "## set8 (2/8 sequences): PSNR (dB) / SSIM / flicker, mean over" in text
    assert "| method | sigma 10 | sigma 30 |" in text
    assert "| f2r | 29.50 / 0.5000 / 1.00 | 27.50 / 0.5000 / 3.00 |" in text
    assert "| b | 20.00 / 0.5000 / 12.00 | 30.00 / 0.5000 / 1.00 |" in text  # per sequence
    assert "Flicker: how much the error changes" in text
    assert "| f2r | 3.00 | 2.50 |" in text
    assert "| noisy | 1000.00 |" not in text  # the input is no method to time
    assert "published" not in text  # a partial set is never compared with the full set's numbers


def test_runs_from_before_flicker_still_make_their_tables_and_plot(tmp_path):
    text = markdown(document(flicker=False))
    assert "## set8: PSNR (dB) / SSIM, mean over" in text and "Flicker" not in text
    assert "| f2r | 29.50 / 0.5000 | 27.50 / 0.5000 |" in text
    plot(document(flicker=False), tmp_path / "psnr.png")
    assert cv2.imread(str(tmp_path / "psnr.png")).shape == (600, 840, 3)  # PSNR panel alone


def test_published_numbers_sit_beside_ours_only_for_the_full_set():
    text = markdown(document(full=True))
    assert "| STBN (published) | 37.24 / 0.9594 | 32.76 / 0.9072 |" in text
    assert "arXiv 2412.11820" in text
    assert "published" not in markdown(document(full=True, name="folder"))


def test_json_is_one_document_with_a_schema_version():
    data = json.loads(to_json(document()))
    assert data["schema_version"] == SCHEMA_VERSION and len(data["scores"]) == 8


def test_plot_draws_psnr_and_flicker_panels(tmp_path):
    path = tmp_path / "psnr.png"
    plot(document(), path)
    image = cv2.imread(str(path))
    assert image.shape == (600, 2 * 640 + 200, 3)
    for panel in (image[:, :640], image[:, 640:1280]):
        assert (panel != 255).any(axis=2).mean() > 0.01  # lines, not a blank canvas
    orange = (image == (14, 127, 255)).all(axis=2)  # the second method's colour (BGR)
    assert orange[:, :640].any() and orange[:, 640:1280].any()


def split(doc, method):
    """The part of a run's document that concerns one method, as if it had run alone."""
    keep = dict(doc)
    keep["methods"] = [m for m in doc["methods"] if m["name"] == method]
    keep["scores"] = [s for s in doc["scores"] if s["method"] == method]
    keep["averages"] = [a for a in doc["averages"] if a["method"] == method]
    return keep


def protocol_of(doc):
    doc["dataset"]["fingerprint"] = "abc"
    doc["protocol"].update(noise=["gaussian:10", "gaussian:30"], seed=0, max_frames=85)
    return doc


def test_merged_runs_give_the_tables_of_one_run():
    whole = protocol_of(document(full=False))
    merged = merge([split(whole, "noisy"), split(whole, "f2r")])
    assert markdown(merged) == markdown(whole)


def test_merge_refuses_runs_of_other_data_or_the_same_method_twice():
    whole = protocol_of(document(full=False))
    other = split(whole, "f2r")
    other["dataset"] = {**whole["dataset"], "fingerprint": "def"}
    with pytest.raises(ValueError, match="same data"):
        merge([split(whole, "noisy"), other])
    with pytest.raises(ValueError, match="more than one run"):
        merge([whole, split(whole, "f2r")])

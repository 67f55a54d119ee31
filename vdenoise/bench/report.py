"""The bench's results as one JSON document, Markdown tables and a PSNR-vs-sigma plot."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vdenoise.bench.published import SOURCE, published

SCHEMA_VERSION = 1


def to_json(document: dict[str, Any]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **document}, indent=1, default=str)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _cell(psnr: float | None, ssim: float | None) -> str:
    if psnr is None:
        return "–"
    return f"{psnr:.2f}" + (f" / {ssim:.4f}" if ssim is not None else "")


def markdown(document: dict[str, Any]) -> str:
    """Average and per-sequence tables (PSNR / SSIM), published numbers beside ours when the
    dataset is the full published one, then speed and the machine."""
    data = document["dataset"]
    conditions = document["protocol"]["conditions"]
    methods = [m["name"] for m in document["methods"]]
    mean = {(a["method"], a["condition"]): a for a in document["averages"]}
    lines = [f"## {data['label']}: PSNR (dB) / SSIM, mean over sequences", ""]
    rows = [
        [m] + [_cell(mean[m, c]["psnr"], mean[m, c]["ssim"]) for c in conditions] for m in methods
    ]
    if data["full"]:
        for name in published(data["name"], 10):
            cells = []
            for c in conditions:
                value = published(data["name"], _sigma(c)).get(name)
                cells.append(_cell(*value) if value else "–")
            rows.append([f"{name} (published)", *cells])
    lines += _table(["method", *conditions], rows)
    if data["full"] and published(data["name"], 10):
        lines += ["", f"Published rows: {SOURCE}."]
    lines += ["", "### Per sequence (PSNR / SSIM)", ""]
    per = {(s["method"], s["condition"], s["sequence"]): s for s in document["scores"]}
    for c in conditions:
        head = ["sequence", *methods]
        rows = []
        for seq in data["sequences"]:
            found = [per[m, c, seq["name"]] for m in methods]
            rows.append([seq["name"], *(_cell(f["psnr"], f["ssim"]) for f in found)])
        lines += [f"**{c}**", "", *_table(head, rows), ""]
    lines += ["### Speed and memory", ""]
    rows = []
    for m in document["methods"]:
        if m["name"] == "noisy":
            continue  # nothing runs: no speed to report
        fps = m.get("model_fps") or m.get("fps")
        e2e = m.get("end_to_end_fps")
        rows.append([m["name"], f"{fps:.2f}" if fps else "–", f"{e2e:.2f}" if e2e else "–"])
    lines += _table(["method", "frames/s (method only)", "frames/s (end to end)"], rows)
    machine = document["machine"]
    memory = document["memory"]
    gpu = memory["peak_gpu_bytes"]
    lines += [
        "",
        f"Machine: {machine['device']}, {machine['precision']}; {machine['versions']}. Peak host "
        f"memory {memory['peak_host_bytes'] / 2**30:.2f} GiB"
        + (f", peak GPU memory {gpu / 2**30:.2f} GiB." if gpu is not None else "."),
    ]
    return "\n".join(lines) + "\n"


def merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from bench runs of the same dataset frames, noise and seed with different
    methods (e.g. a slow baseline run apart): methods, scores and averages side by side, the
    largest peak memory. Refuses runs whose data or protocol differ, or methods run twice."""
    first = documents[0]
    for doc in documents[1:]:
        for key in ("fingerprint", "label"):
            if doc["dataset"][key] != first["dataset"][key]:
                raise ValueError(f"the runs were not on the same data ({key} differs)")
        for key in ("conditions", "noise", "seed", "max_frames"):
            if doc["protocol"][key] != first["protocol"][key]:
                raise ValueError(f"the runs did not use the same protocol ({key} differs)")
        if doc["machine"] != first["machine"]:
            raise ValueError("the runs were on different machines: their speeds do not compare")
    names = [m["name"] for doc in documents for m in doc["methods"]]
    twice = {n for n in names if names.count(n) > 1}
    if twice:
        raise ValueError(f"{sorted(twice)[0]} is in more than one run")
    peaks = [doc["memory"] for doc in documents]
    gpu = [p["peak_gpu_bytes"] for p in peaks if p["peak_gpu_bytes"] is not None]
    return {
        **first,
        "methods": [m for doc in documents for m in doc["methods"]],
        "scores": [s for doc in documents for s in doc["scores"]],
        "averages": [a for doc in documents for a in doc["averages"]],
        "memory": {
            "peak_host_bytes": max(p["peak_host_bytes"] for p in peaks),
            "peak_gpu_bytes": max(gpu) if gpu else None,
        },
        "seconds": sum(doc.get("seconds", 0.0) for doc in documents),
    }


def _sigma(condition: str) -> float:
    try:
        return float(condition.removeprefix("sigma ").removesuffix(", 8-bit"))
    except ValueError:
        return -1.0


# -- the plot -----------------------------------------------------------------------------------
COLOURS = [  # matplotlib's tab10, RGB
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def plot(document: dict[str, Any], path: Path, size: tuple[int, int] = (900, 600)) -> None:
    """Mean PSNR against sigma, one line per method, as a PNG (drawn with OpenCV)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for a in document["averages"]:
        sigma = _sigma(a["condition"])
        if sigma >= 0:
            series.setdefault(a["method"], []).append((sigma, a["psnr"]))
    if not series:
        raise ValueError("a PSNR-vs-sigma plot needs AWGN conditions")
    width, height = size
    left, right, top, bottom = 70, 220, 40, 60
    image = np.full((height, width, 3), 255, np.uint8)
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = min(xs) - 2, max(xs) + 2
    y0, y1 = math.floor(min(ys)) - 1, math.ceil(max(ys)) + 1

    def at(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return round(px), round(py)

    black, grey = (0, 0, 0), (220, 220, 220)
    font = cv2.FONT_HERSHEY_SIMPLEX
    step = max(1, (y1 - y0) // 8)
    for y in range(y0, y1 + 1, step):
        cv2.line(image, at(x0, y), at(x1, y), grey, 1)
        cv2.putText(image, f"{y}", (at(x0, y)[0] - 40, at(x0, y)[1] + 5), font, 0.45, black, 1)
    for x in sorted(set(xs)):
        cv2.putText(image, f"{x:g}", (at(x, y0)[0] - 8, height - bottom + 20), font, 0.45, black)
    cv2.rectangle(image, at(x0, y1), at(x1, y0), black, 1)
    cv2.putText(image, "noise sigma (0-255)", (left + 180, height - 15), font, 0.55, black, 1)
    cv2.putText(image, "PSNR (dB)", (10, top - 15), font, 0.55, black, 1)
    cv2.putText(image, document["dataset"]["label"], (left + 10, top - 15), font, 0.55, black, 1)
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)][::-1]  # RGB -> BGR
        pixels = [at(x, y) for x, y in sorted(points)]
        for a, b in itertools.pairwise(pixels):
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for p in pixels:
            cv2.circle(image, p, 4, colour, -1, cv2.LINE_AA)
        legend = (width - right + 15, top + 20 + 22 * i)
        cv2.line(image, legend, (legend[0] + 25, legend[1]), colour, 3)
        cv2.putText(image, name, (legend[0] + 32, legend[1] + 5), font, 0.45, black, 1)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")

"""The bench's results as one JSON document, Markdown tables and a plot of PSNR and flicker
against sigma."""

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


def _cell(psnr: float | None, ssim: float | None, flicker: float | None = None) -> str:
    if psnr is None:
        return "–"
    text = f"{psnr:.2f}" + (f" / {ssim:.4f}" if ssim is not None else "")
    return text + (f" / {flicker:.2f}" if flicker is not None else "")


def _has_flicker(document: dict[str, Any]) -> bool:
    """Whether the run measured flicker (runs before it did not; a single frame cannot)."""
    return any(a.get("flicker") is not None for a in document["averages"])


FLICKER_NOTE = (
    "Flicker: how much the error changes from frame to frame along the clean frames' motion "
    "(0-255 scale, lower is better; 0 for an error that moves with the picture, about 1.1-1.4 "
    "sigma for independent noise per frame)."
)


def markdown(document: dict[str, Any]) -> str:
    """Average and per-sequence tables (PSNR / SSIM / flicker), published numbers beside ours
    when the dataset is the full published one, then speed and the machine."""
    data = document["dataset"]
    conditions = document["protocol"]["conditions"]
    methods = [m["name"] for m in document["methods"]]
    mean = {(a["method"], a["condition"]): a for a in document["averages"]}
    figures = "PSNR (dB) / SSIM" + (" / flicker" if _has_flicker(document) else "")
    lines = [f"## {data['label']}: {figures}, mean over sequences", ""]
    rows = [[m] + [_cell(*_figures(mean[m, c])) for c in conditions] for m in methods]
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
    if _has_flicker(document):
        lines += ["", FLICKER_NOTE]
    lines += ["", f"### Per sequence ({figures})", ""]
    per = {(s["method"], s["condition"], s["sequence"]): s for s in document["scores"]}
    for c in conditions:
        head = ["sequence", *methods]
        rows = []
        for seq in data["sequences"]:
            found = [per[m, c, seq["name"]] for m in methods]
            rows.append([seq["name"], *(_cell(*_figures(f)) for f in found)])
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


def _figures(row: dict[str, Any]) -> tuple[float, float, float | None]:
    return row["psnr"], row["ssim"], row.get("flicker")


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


Series = dict[str, list[tuple[float, float]]]
PANEL, LEGEND, HEIGHT = 640, 200, 600  # pixels
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60


def _series(document: dict[str, Any], key: str) -> Series:
    """(sigma, figure) points per method, AWGN conditions only."""
    series: Series = {}
    for a in document["averages"]:
        sigma = _sigma(a["condition"])
        if sigma >= 0 and a.get(key) is not None:
            series.setdefault(a["method"], []).append((sigma, a[key]))
    return series


def plot(document: dict[str, Any], path: Path) -> None:
    """Mean PSNR against sigma, and beside it flicker (log scale) when the run measured it, one
    line per method, as a PNG (drawn with OpenCV)."""
    psnr = _series(document, "psnr")
    if not psnr:
        raise ValueError("a PSNR-vs-sigma plot needs AWGN conditions")
    panels = [("PSNR (dB)", psnr, False)]
    if flicker := _series(document, "flicker"):
        panels.append(("flicker (0-255, lower is better)", flicker, True))
    width = PANEL * len(panels) + LEGEND
    image = np.full((HEIGHT, width, 3), 255, np.uint8)
    names = list(psnr)
    for i, (title, series, log) in enumerate(panels):
        _panel(image[:, i * PANEL : (i + 1) * PANEL], title, series, names, log)
    label = document["dataset"]["label"]
    cv2.putText(image, label, (width - LEGEND + 15, TOP - 15), FONT, 0.5, BLACK, 1)
    for i, name in enumerate(names):
        colour = _colour(i)
        legend = (width - LEGEND + 15, TOP + 20 + 22 * i)
        cv2.line(image, legend, (legend[0] + 25, legend[1]), colour, 3)
        cv2.putText(image, name, (legend[0] + 32, legend[1] + 5), FONT, 0.45, BLACK, 1)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


BLACK, GREY = (0, 0, 0), (220, 220, 220)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(index: int) -> tuple[int, int, int]:
    r, g, b = COLOURS[index % len(COLOURS)]
    return b, g, r  # OpenCV draws BGR


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        ladder = [m * 10.0**e for e in range(-2, 4) for m in (1, 2, 5)]
        return [t for t in ladder if low <= t <= high]
    step = max(1, math.ceil((high - low) / 8))
    return list(range(math.ceil(low), math.floor(high) + 1, step))


def _panel(image: np.ndarray, title: str, series: Series, names: list[str], log: bool) -> None:
    """One figure against sigma, drawn into `image` (a view of the whole plot)."""
    height, width = image.shape[:2]
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = min(xs) - 2, max(xs) + 2
    if log:
        scale = lambda y: math.log10(max(y, 1e-3))  # noqa: E731
        y0, y1 = min(ys) / 1.3, max(ys) * 1.3
    else:
        scale = float
        y0, y1 = math.floor(min(ys)) - 1, math.ceil(max(ys)) + 1

    def at(x: float, y: float) -> tuple[int, int]:
        px = LEFT + (x - x0) / (x1 - x0) * (width - LEFT - RIGHT)
        fraction = (scale(y) - scale(y0)) / (scale(y1) - scale(y0) or 1)
        return round(px), round(height - BOTTOM - fraction * (height - TOP - BOTTOM))

    for y in _ticks(y0, y1, log):
        cv2.line(image, at(x0, y), at(x1, y), GREY, 1)
        cv2.putText(image, f"{y:g}", (at(x0, y)[0] - 45, at(x0, y)[1] + 5), FONT, 0.45, BLACK, 1)
    for x in sorted(set(xs)):
        cv2.putText(image, f"{x:g}", (at(x, y0)[0] - 8, height - BOTTOM + 20), FONT, 0.45, BLACK)
    cv2.rectangle(image, at(x0, y1), at(x1, y0), BLACK, 1)
    cv2.putText(image, "noise sigma (0-255)", (LEFT + 180, height - 15), FONT, 0.55, BLACK, 1)
    cv2.putText(image, title, (10, TOP - 15), FONT, 0.55, BLACK, 1)
    for name, points in series.items():
        colour = _colour(names.index(name))
        pixels = [at(x, y) for x, y in sorted(points)]
        for a, b in itertools.pairwise(pixels):
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for p in pixels:
            cv2.circle(image, p, 4, colour, -1, cv2.LINE_AA)

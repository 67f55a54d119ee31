"""Published PSNR/SSIM on the full Set8 and DAVIS-2017 test-dev, AWGN sigma 10..50.

Source: STBN's paper, Table 1 (Chen et al., AAAI 2025, arXiv 2412.11820), transcribed in
../shared/reference/methods.md 2.1. SSIM is None where the paper gives none. STBN's DAVIS
SSIM at sigma 10 (0.9613) is printed as published, though it looks like a typo (below its own
sigma 20 value).
"""

from __future__ import annotations

SOURCE = "STBN (AAAI 2025), Table 1, arXiv 2412.11820"
SIGMAS = (10, 20, 30, 40, 50)

# method -> (PSNR per sigma, SSIM per sigma or None)
PUBLISHED: dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...] | None]]] = {
    "set8": {
        "VBM4D": ((36.05, 32.19, 30.00, 28.48, 27.33), None),
        "DVDnet (supervised)": (
            (36.08, 33.49, 31.68, 30.46, 29.53),
            (0.9510, 0.9182, 0.8862, 0.8564, 0.8289),
        ),
        "FastDVDnet (supervised)": (
            (36.44, 33.43, 31.68, 30.46, 29.53),
            (0.9540, 0.9196, 0.8889, 0.8608, 0.8351),
        ),
        "FloRNN (supervised)": (
            (37.57, 34.67, 32.97, 31.75, 30.80),
            (0.9639, 0.9379, 0.9138, 0.8911, 0.8696),
        ),
        "UDVD": ((36.36, 33.53, 31.88, 30.72, 29.81), (0.9510, 0.9167, 0.8865, 0.8595, 0.8349)),
        "RDRF": ((36.67, 34.00, 32.39, 31.23, 30.31), (0.9547, 0.9251, 0.8978, 0.8725, 0.8490)),
        "ER2R_s": ((37.55, 34.34, 32.45, 31.09, 30.05), None),
        "STBN": ((37.24, 34.41, 32.76, 31.57, 30.62), (0.9594, 0.9322, 0.9072, 0.8837, 0.8608)),
    },
    "davis": {
        "VBM4D": ((37.58, 33.88, 31.65, 30.05, 28.80), None),
        "DVDnet (supervised)": (
            (38.13, 35.70, 34.08, 32.86, 31.85),
            (0.9657, 0.9422, 0.9188, 0.8962, 0.8745),
        ),
        "FastDVDnet (supervised)": (
            (38.71, 35.77, 34.04, 32.82, 31.86),
            (0.9672, 0.9405, 0.9167, 0.8949, 0.8747),
        ),
        "FloRNN (supervised)": (
            (40.16, 37.52, 35.89, 34.66, 33.67),
            (0.9755, 0.9564, 0.9440, 0.9286, 0.9131),
        ),
        "UDVD": ((39.17, 35.94, 34.09, 32.79, 31.80), (0.9700, 0.9428, 0.9178, 0.8949, 0.8739)),
        "RDRF": ((39.54, 36.40, 34.55, 33.23, 32.20), (0.9717, 0.9473, 0.9245, 0.9032, 0.8832)),
        "ER2R_s": ((39.52, 36.49, 34.60, 33.29, 32.25), None),
        "STBN": ((40.35, 37.67, 36.00, 34.73, 33.70), (0.9613, 0.9606, 0.9454, 0.9296, 0.9138)),
    },
}


def published(dataset: str, sigma: float) -> dict[str, tuple[float, float | None]]:
    """method -> (PSNR, SSIM) published for `dataset` at `sigma`; empty when none is."""
    if dataset not in PUBLISHED or sigma not in SIGMAS:
        return {}
    i = SIGMAS.index(int(sigma))
    return {
        method: (psnrs[i], ssims[i] if ssims else None)
        for method, (psnrs, ssims) in PUBLISHED[dataset].items()
    }

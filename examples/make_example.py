"""Derive examples/box-noisy.mp4 from OpenCV's box.mp4 sample (Apache-2.0).

The first 3 s of box.mp4, downscaled to 320x240, with white Gaussian noise (sigma 20 on the
0-255 scale, seed 0) added in RGB, encoded with x264 (crf 20) as BT.601 limited range, tagged;
the original audio packets of those 3 s are copied unchanged. Prints the noise level actually
left in the file, measured against the noise-free downscaled frames.

    python examples/make_example.py ../shared/data/clips/box.mp4 examples/box-noisy.mp4

Uses PyAV and NumPy only, not vdenoise, so the example does not depend on the code it tests.
"""

from __future__ import annotations

import sys
from fractions import Fraction

import av
import cv2
import numpy as np

SECONDS, SIGMA, SEED, CRF = 3, 20.0, 0, "20"
SIZE = (320, 240)


def main(src: str, dst: str) -> None:
    rng = np.random.default_rng(SEED)
    clean = []
    with av.open(src) as inp, av.open(dst, "w") as out:
        video, audio = inp.streams.video[0], inp.streams.audio[0]
        stream = out.add_stream("libx264", rate=30, options={"crf": CRF, "preset": "slow"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 30)
        cc = stream.codec_context
        cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 6, 6, 6
        copied = out.add_stream_from_template(audio)
        index = 0
        for packet in inp.demux(video, audio):
            if packet.stream is audio:
                if packet.size and packet.pts * packet.time_base < SECONDS:
                    packet.stream = copied
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if index >= SECONDS * 30:
                    continue
                rgb = frame.to_ndarray(format="rgb24", src_colorspace=5, src_color_range=1)
                small = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA).astype(np.float64)
                clean.append(small)
                noisy = np.clip(small + rng.normal(0, SIGMA, small.shape), 0, 255).round()
                pic = av.VideoFrame.from_ndarray(noisy.astype(np.uint8), format="rgb24")
                pic = pic.reformat(format="yuv420p", dst_colorspace=5, dst_color_range=1)
                pic.pts, pic.time_base = index, Fraction(1, 30)
                out.mux(stream.encode(pic))
                index += 1
        out.mux(stream.encode(None))
    with av.open(dst) as check:
        frames = [
            f.to_ndarray(format="rgb24", src_colorspace=5, src_color_range=1)
            for f in check.decode(video=0)
        ]
    error = np.stack(frames).astype(np.float64) - np.stack(clean)
    print(f"{len(frames)} frames; noise left in the file: {error.std():.2f} (sigma added {SIGMA})")


if __name__ == "__main__":
    main(*sys.argv[1:3])

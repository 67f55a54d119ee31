import torch

from vdenoise.model_card import render
from vdenoise.models import build
from vdenoise.training.data import ClipSampler
from vdenoise.training.trainer import Trainer, TrainSettings
from vdenoise.weights import file_sha256


def test_the_card_tells_what_training_recorded(tmp_path):
    out = tmp_path / "f2r-test.safetensors"
    clean = (torch.rand(8, 3, 40, 40) * 255).to(torch.uint8)
    settings = TrainSettings(steps=4, batch=2, crop=32, noise="gaussian:5-55", lr=1e-3,
                             eight_bit_share=0.5, sigma_power=1.0)  # fmt: skip
    sampler = ClipSampler([clean], 5, 32, seed=0)
    scores = iter([{"psnr": 21.5, "seq-a": 20.0, "seq-b": 23.0}])

    def validate(model):
        return next(scores)

    describe = {"kind": "train", "data": ["seq1.mp4", "seq2.mp4"], "started_from": "scratch",
                "validation_noise": "gaussian:30"}  # fmt: skip
    trainer = Trainer(build("f2r", "tiny"), sampler, settings, out, torch.device("cpu"),
                      describe, validate)  # fmt: skip
    trainer.run()
    card = render(out, "f2r-test")
    assert card.startswith("# f2r-test\n")
    assert file_sha256(out) in card
    assert "preset tiny" in card and "`vdenoise train`" in card
    assert "2 sequences: seq1.mp4, seq2.mp4" in card
    eight_bit = "then rounded and clipped to 8 bits in 50% of clips"
    loss = "stage-2 loss: sure, each window weighed by sigma^-1"
    assert f"noise added: gaussian:5-55, {eight_bit}; {loss}" in card
    assert "anchor 2 steps" in card and "refine 2 steps" in card
    assert "device: cpu (" in card
    assert "## Validation (gaussian:30)" in card
    assert "| 4 | 21.50 | 20.00 | 23.00 |" in card

"""Self-supervised training: the data, the losses of each method, and the loop behind
`vdenoise fit` (adapt to one noisy clip) and `vdenoise train` (release weights).

Nothing here imports PyAV: videos are decoded with OpenCV, so training runs on machines that
only have torch and OpenCV.
"""

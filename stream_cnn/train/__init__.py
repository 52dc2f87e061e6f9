"""Training by stream-cnn's own backprop: batched Numba forward/backward kernels (kernels.py), a trainable network
built from a model config (network.py), SGD / Adam (optim.py), camera-like augmentation (augment.py), the
training loop and weight files (trainer.py), evaluation through the inference engine (evaluate.py) and the
`train` / `eval` commands (commands.py)."""

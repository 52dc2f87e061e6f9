"""Optimisers (SGD with momentum, Adam) and the learning-rate schedule; they update parameters in place.

The parameter arrays are small (tens of thousands of floats), so plain vectorised NumPy is fast enough and
keeps the update rules easy to read."""
from __future__ import annotations

import math

import numpy as np


class SGD:
    """v = momentum * v + (grad + weight_decay * p); p -= lr * v (PyTorch's formulation)."""

    def __init__(self, params: list[np.ndarray], momentum: float = 0.9, weight_decay: float = 0.0):
        self.params = params
        self.momentum = np.float32(momentum)
        self.weight_decay = np.float32(weight_decay)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        lr = np.float32(lr)
        for p, g, v in zip(self.params, grads, self.velocity):
            if self.weight_decay:
                g = g + self.weight_decay * p
            v *= self.momentum
            v += g
            p -= lr * v


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction; weight decay decoupled from the gradient (AdamW)."""

    def __init__(self, params: list[np.ndarray], beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = params
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.weight_decay = weight_decay
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        b1, b2 = np.float32(self.beta1), np.float32(self.beta2)
        # fold both bias corrections into one step size
        step_size = np.float32(lr * math.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t))
        eps = np.float32(self.eps)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            if self.weight_decay:
                p -= np.float32(lr * self.weight_decay) * p
            p -= step_size * m / (np.sqrt(v) + eps)


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def cosine_lr(base_lr: float, step: int, total_steps: int, warmup_steps: int = 0, floor: float = 0.02) -> float:
    """Linear warm-up, then cosine decay from base_lr down to floor * base_lr at the last step."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    progress = min(max(progress, 0.0), 1.0)
    return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

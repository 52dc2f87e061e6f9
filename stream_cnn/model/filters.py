"""Fixed filter banks (frozen conv weights) and the fractional max pool's pseudo-random bin edges.

Every bank returns float32 conv weights (C_out, C_in, KH, KW). With several input channels (RGB) each filter is
spread evenly over them (weight / C_in per channel), so a bank responds to the channel mean: a grey image in
any channel layout gives the same response. Bad parameters raise ValueError with one line saying which and why;
the model loader turns that into a ModelFileError naming the file and layer.
"""
import math

import numpy as np


def _spread(kernels, in_channels):
    """(C_out, KH, KW) float64 kernels -> (C_out, in_channels, KH, KW) float32 weights averaging the channels."""
    if int(in_channels) != in_channels or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    kernels = np.asarray(kernels, np.float64)
    weights = np.repeat(kernels[:, None, :, :], int(in_channels), axis=1) / in_channels
    return np.ascontiguousarray(weights, dtype=np.float32)


def _odd_size(size, name="size"):
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {size!r}")
    return int(size)


def sobel(in_channels=1):
    """Two 3x3 filters: index 0 = x derivative (responds to vertical edges), 1 = y derivative (horizontal edges).

    Cross-correlation convention (like the conv kernels): the x filter is positive where intensity rises to the
    right.
    """
    gx = np.array([[-1.0, 0.0, 1.0],
                   [-2.0, 0.0, 2.0],
                   [-1.0, 0.0, 1.0]])
    return _spread(np.stack([gx, gx.T]), in_channels)


def gaussian(size=5, sigma=1.0, in_channels=1):
    """One size x size Gaussian blur filter, normalised to sum 1."""
    size = _odd_size(size)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    r = np.arange(size) - size // 2
    profile = np.exp(-(r ** 2) / (2.0 * sigma ** 2))
    kernel = np.outer(profile, profile)
    return _spread((kernel / kernel.sum())[None], in_channels)


def laplacian(diagonals=False, in_channels=1):
    """3x3 discrete Laplacian (4-neighbour, or 8-neighbour with diagonals); sums to 0, so flat regions give 0."""
    if diagonals:
        kernel = np.array([[1.0, 1.0, 1.0], [1.0, -8.0, 1.0], [1.0, 1.0, 1.0]])
    else:
        kernel = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    return _spread(kernel[None], in_channels)


def gabor(orientations=4, scales=1, wavelength=4.0, size=None, aspect=0.5, phase=0.0, scale_step=2.0,
          in_channels=1):
    """Bank of orientations x scales Gabor filters, ordered scale-major (index = scale * orientations + k).

    Orientation k has angle theta = k * pi / orientations: the direction of the carrier's wave vector, so the
    filter responds most to a grating whose intensity varies along theta (stripes perpendicular to it).
    Scale s uses wavelength * scale_step**s and sigma = 0.56 * that wavelength (a one-octave bandwidth).
    Each filter has its mean removed (no response to flat regions) and unit L2 norm (comparable responses).
    size defaults to the odd size covering +-2.5 sigma of the largest scale.
    """
    if int(orientations) != orientations or orientations < 1:
        raise ValueError(f"orientations must be a positive integer, got {orientations!r}")
    if int(scales) != scales or scales < 1:
        raise ValueError(f"scales must be a positive integer, got {scales!r}")
    if not wavelength >= 2.0:
        raise ValueError(f"wavelength must be >= 2 pixels (Nyquist), got {wavelength!r}")
    if not scale_step > 0 or not aspect > 0:
        raise ValueError("scale_step and aspect must be > 0")
    wavelengths = [wavelength * scale_step ** s for s in range(int(scales))]
    if size is None:
        size = 2 * math.ceil(2.5 * 0.56 * wavelengths[-1]) + 1
    size = _odd_size(size)
    r = np.arange(size) - size // 2
    ys, xs = np.meshgrid(r, r, indexing="ij")
    kernels = []
    for lam in wavelengths:
        sigma = 0.56 * lam
        for k in range(int(orientations)):
            theta = k * math.pi / orientations
            along = xs * math.cos(theta) + ys * math.sin(theta)
            across = -xs * math.sin(theta) + ys * math.cos(theta)
            envelope = np.exp(-(along ** 2 + (aspect * across) ** 2) / (2.0 * sigma ** 2))
            kernel = envelope * np.cos(2.0 * math.pi * along / lam + phase)
            kernel -= kernel.mean()
            norm = np.sqrt(np.sum(kernel ** 2))
            kernels.append(kernel / norm if norm > 0 else kernel)
    return _spread(np.stack(kernels), in_channels)


FILTER_BANKS = {
    "sobel": sobel,
    "gaussian": gaussian,
    "gabor": gabor,
    "laplacian": laplacian,
}


def make_bank(name, in_channels=1, **params):
    """Weights of the named bank; params are that bank's keyword arguments (from the layer config)."""
    try:
        factory = FILTER_BANKS[name]
    except KeyError:
        raise ValueError(f"unknown filter bank {name!r}; expected one of {', '.join(FILTER_BANKS)}") from None
    try:
        return factory(in_channels=in_channels, **params)
    except TypeError as exc:  # an unknown or misspelt parameter name
        raise ValueError(f"bad parameter for filter bank {name!r}: {exc}") from None


def fractional_edges(in_size, out_size, seed):
    """Bin edges for fractional max pooling, Graham 2014 (disjoint regions, pseudo-random sequence).

    With alpha = in_size / out_size and u drawn once from the seed in [0, 1):
    edges[i] = floor(alpha * (i + u)) - floor(alpha * u) for i < out_size, edges[out_size] = in_size.
    Bin i is [edges[i], edges[i+1]); every bin is non-empty and the bins tile the input exactly
    (for alpha in (1, 2) the widths are a pseudo-random mix of 1s and 2s). Same seed, same edges.
    """
    if int(in_size) != in_size or int(out_size) != out_size or not 1 <= out_size <= in_size:
        raise ValueError(f"fractional pooling needs 1 <= output size <= input size, got {out_size!r} from {in_size!r}")
    in_size, out_size = int(in_size), int(out_size)
    alpha = in_size / out_size
    u = np.random.default_rng(seed).random()
    i = np.arange(out_size + 1, dtype=np.float64)
    edges = np.floor(alpha * (i + u)).astype(np.int64) - int(math.floor(alpha * u))
    edges[-1] = in_size
    return edges

"""Fixed filter banks and the fractional pooling edges."""
import numpy as np
import pytest

from stream_cnn.model import kernels as K
from stream_cnn.model.filters import FILTER_BANKS, fractional_edges, gabor, gaussian, laplacian, make_bank, sobel


def test_sobel_shapes_and_values():
    w = sobel()
    assert w.shape == (2, 1, 3, 3) and w.dtype == np.float32 and w.flags.c_contiguous
    np.testing.assert_array_equal(w[0, 0], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(w[1, 0], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])


def test_banks_spread_over_input_channels_as_a_channel_mean():
    rgb = sobel(in_channels=3)
    assert rgb.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(rgb.sum(axis=1), sobel()[:, 0], atol=1e-6)


@pytest.mark.parametrize("size, sigma", [(3, 0.5), (5, 1.0), (7, 2.0), (9, 1.3)])
def test_gaussian_sums_to_one_and_is_symmetric(size, sigma):
    w = gaussian(size, sigma)
    assert w.shape == (1, 1, size, size) and w.dtype == np.float32
    k = w[0, 0]
    assert abs(float(k.sum(dtype=np.float64)) - 1.0) < 1e-6
    np.testing.assert_allclose(k, k.T, atol=1e-7)
    np.testing.assert_allclose(k, k[::-1, :], atol=1e-7)
    np.testing.assert_allclose(k, k[:, ::-1], atol=1e-7)
    centre = size // 2
    assert k[centre, centre] == k.max()


def test_wider_gaussian_spreads_more():
    narrow, wide = gaussian(7, 0.8)[0, 0], gaussian(7, 2.0)[0, 0]
    assert narrow[3, 3] > wide[3, 3] and narrow[0, 0] < wide[0, 0]


@pytest.mark.parametrize("diagonals", [False, True])
def test_laplacian_sums_to_zero(diagonals):
    w = laplacian(diagonals)
    assert w.shape == (1, 1, 3, 3)
    assert w.sum() == 0.0
    assert w[0, 0, 1, 1] == (-8.0 if diagonals else -4.0)


@pytest.mark.parametrize("orientations, scales", [(1, 1), (4, 1), (4, 2), (6, 3)])
def test_gabor_bank_count(orientations, scales):
    w = gabor(orientations, scales, wavelength=4.0)
    assert w.shape[:2] == (orientations * scales, 1)
    assert w.shape[2] == w.shape[3] and w.shape[2] % 2 == 1
    assert w.dtype == np.float32
    # Zero mean: no response to flat regions; unit norm: comparable responses.
    np.testing.assert_allclose(w.sum(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.sqrt((w.astype(np.float64) ** 2).sum(axis=(1, 2, 3))), 1.0, atol=1e-5)


def grating(theta, wavelength, size):
    ys, xs = np.mgrid[0:size, 0:size]
    return np.cos(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / wavelength).astype(np.float32)[None]


@pytest.mark.parametrize("orientations", [4, 8])
def test_gabor_responds_most_to_matching_grating(orientations):
    wavelength = 6.0
    bank = gabor(orientations, 1, wavelength)
    size = 40
    k = bank.shape[2]
    for index in range(orientations):
        image = grating(index * np.pi / orientations, wavelength, size)
        out = np.empty((orientations, size - k + 1, size - k + 1), np.float32)
        K.conv2d(image, bank, np.zeros(orientations, np.float32), out, 1, 1, 1, 1, 1, 0, 0.0)
        energy = (out.astype(np.float64) ** 2).mean(axis=(1, 2))
        assert int(np.argmax(energy)) == index
        assert energy[index] > 2 * np.sort(energy)[-2]  # clearly, not by a hair


def test_gabor_scales_prefer_their_own_wavelength():
    bank = gabor(orientations=1, scales=2, wavelength=4.0)  # wavelengths 4 and 8
    k = bank.shape[2]
    for scale, wavelength in enumerate([4.0, 8.0]):
        image = grating(0.0, wavelength, 48)
        out = np.empty((2, 48 - k + 1, 48 - k + 1), np.float32)
        K.conv2d(image, bank, np.zeros(2, np.float32), out, 1, 1, 1, 1, 1, 0, 0.0)
        assert int(np.argmax((out.astype(np.float64) ** 2).mean(axis=(1, 2)))) == scale


def test_make_bank_by_name_and_errors():
    assert set(FILTER_BANKS) == {"sobel", "gaussian", "gabor", "laplacian"}
    np.testing.assert_array_equal(make_bank("gaussian", 3, size=5, sigma=1.0), gaussian(5, 1.0, in_channels=3))
    with pytest.raises(ValueError, match="unknown filter bank 'prewitt'"):
        make_bank("prewitt")
    with pytest.raises(ValueError, match="bad parameter for filter bank 'gaussian'"):
        make_bank("gaussian", sigmaa=1.0)
    with pytest.raises(ValueError, match="odd"):
        gaussian(4, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian(5, 0.0)
    with pytest.raises(ValueError, match="orientations"):
        gabor(0)
    with pytest.raises(ValueError, match="wavelength"):
        gabor(4, 1, wavelength=1.0)


@pytest.mark.parametrize("in_size, out_size", [(10, 7), (28, 20), (25, 25), (9, 1), (30, 14), (100, 71)])
def test_fractional_edges_tile_the_input(in_size, out_size):
    for seed in range(20):
        edges = fractional_edges(in_size, out_size, seed)
        assert edges.dtype == np.int64 and edges.shape == (out_size + 1,)
        assert edges[0] == 0 and edges[-1] == in_size      # covers the input exactly
        widths = np.diff(edges)
        assert np.all(widths >= 1)                          # strictly monotone: no empty bin
        alpha = in_size / out_size
        assert np.all(widths <= np.ceil(alpha) + 1)         # bins stay about alpha wide


def test_fractional_edges_mix_widths_for_alpha_between_one_and_two():
    widths = np.diff(fractional_edges(28, 20, 3))
    assert set(widths.tolist()) == {1, 2}


def test_fractional_edges_deterministic_per_seed_and_vary_across_seeds():
    np.testing.assert_array_equal(fractional_edges(28, 20, 7), fractional_edges(28, 20, 7))
    distinct = {tuple(fractional_edges(28, 20, seed)) for seed in range(10)}
    assert len(distinct) >= 3


@pytest.mark.parametrize("in_size, out_size", [(5, 6), (5, 0), (0, 0)])
def test_fractional_edges_reject_impossible_sizes(in_size, out_size):
    with pytest.raises(ValueError, match="output size"):
        fractional_edges(in_size, out_size, 0)

"""StyleGAN2's resampling: `upfirdn2d`, the pad, upsample, FIR filter and downsample of
NVlabs/stylegan2-ada-pytorch (torch_utils/ops/upfirdn2d.py), with its zero padding.

Pixels outside the image are zeros, as in the reference, where `jax.image.resize` would
renormalise the filter at the border (a quarter to half of the pixels at 4x4 and 8x8).
The paddings the StyleGAN2 layers use are the reference's (`upsample2d`, `downsample2d` and
conv2d_resample's padding arithmetic for a k x k convolution).
"""
import math
from typing import Sequence

import jax
from jax import lax
import numpy as np

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)  # StyleGAN2's low-pass filter, separable: [1, 3, 3, 1] x itself


def upfirdn2d(x: jax.Array, taps: Sequence[float] = BLUR_TAPS, up: int = 1, down: int = 1,
              padding: tuple[int, int] = (0, 0), gain: float = 1.0) -> jax.Array:
  """Upsamples, pads, filters and downsamples each channel of NHWC images, in the
  reference's order: insert up - 1 zeros after each pixel; pad `padding` (before, after)
  zeros on both spatial axes of the upsampled image (negative: crop); convolve with the
  separable filter taps x taps, normalised to sum 1 and times `gain`, where it fits; keep
  every `down`-th pixel. Output side: (side * up + before + after - len(taps)) // down + 1.
  """
  taps = np.asarray(taps, np.float64)
  taps = taps / taps.sum() * math.sqrt(gain)  # per axis: the 2-D filter gets `gain` once
  before, after = padding
  zero = np.zeros((), x.dtype)
  spatial = (before, after + up - 1, up - 1)  # lax.pad's interior zeros do the upsampling
  x = lax.pad(x, zero, ((0, 0, 0), spatial, spatial, (0, 0, 0)))
  for axis in (1, 2):
    length = (x.shape[axis] - len(taps)) // down + 1
    # A convolution, so the taps run backwards over each window.
    x = sum(float(tap) * lax.slice_in_dim(x, k, k + down * (length - 1) + 1, down, axis)
            for k, tap in enumerate(taps[::-1]))
  return x


def conv_padding(kernel_size: int, up: int = 1, down: int = 1) -> tuple[int, int]:
  """(before, after): the zeros conv2d_resample pads once around the input of a k x k
  convolution that upsamples (`up`) or downsamples (`down`) through BLUR_TAPS, for the
  filter and the kernel together; with k = 1, `upsample2d`'s and `downsample2d`'s."""
  taps, border = len(BLUR_TAPS), kernel_size // 2
  if up > 1:
    return border + (taps + up - 1) // 2, border + (taps - up) // 2
  return border + (taps - down + 1) // 2, border + (taps - down) // 2


def upsample_2x(x: jax.Array) -> jax.Array:
  """2x upsampling through the [1, 3, 3, 1] filter with gain 4 (zero insertion leaves a
  quarter of the pixels): the reference's `upsample2d`. Interpolates bilinearly inside the
  image, with zeros beyond its border."""
  return upfirdn2d(x, up=2, padding=conv_padding(1, up=2), gain=4.0)

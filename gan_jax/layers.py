"""Layers shared by the GAN models."""
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def _subpixel_taps() -> np.ndarray:
  """Index [t, a] of the 4x4 tap that 3x3 tap t feeds to output phase a.

  Output row 2m + a reads input rows m + t - 1 (t = 0, 1, 2) through kernel row
  k = 3 + a - 2t; the one t per phase with k outside 0..3 gets index 4, a row
  of zeros that `subpixel_kernel` pads on.
  """
  k = 3 + np.arange(2)[None, :] - 2 * np.arange(3)[:, None]
  return np.where((k >= 0) & (k <= 3), k, 4)


_TAPS = _subpixel_taps()


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """Rearranges a [4, 4, cin, cout] `UpConv` kernel into [3, 3, cin, 4 * cout].

  Output channel (2a + b) * cout + c of the 3x3 stride-1 conv is channel c of
  output pixel (2m + a, 2n + b). A gather rather than a 0/1 matmul, so the
  rearrangement stays exact whatever the matmul precision.
  """
  cin, cout = kernel.shape[2:]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  taps = padded[_TAPS[:, :, None, None], _TAPS[None, None, :, :]]  # [t, a, s, b, i, o]
  return taps.transpose(0, 2, 4, 1, 3, 5).reshape(3, 3, cin, 4 * cout)


def depth_to_space(y: jax.Array) -> jax.Array:
  """[N, H, W, 4C] -> [N, 2H, 2W, C], channel (2a + b) * C + c to pixel (2m + a, 2n + b)."""
  n, h, w, c4 = y.shape
  y = y.reshape(n, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h, 2 * w, c4 // 4)


class UpConv(nn.Module):
  """The DCGAN upsampling layer: a 4x4, stride-2, padding-1 transposed conv.

  Maps NHWC [N, H, W, cin] to [N, 2H, 2W, features] exactly as PyTorch's
  `nn.ConvTranspose2d(cin, features, 4, stride=2, padding=1)`:
  out[o] = sum over input i and tap k with o = 2i - 1 + k of x[i] @ kernel[k]
  (per spatial axis). `kernel[kh, kw, ci, co]` is torch's `weight[ci, co, kh, kw]`,
  i.e. `weight.permute(2, 3, 0, 1)`; flax's `nn.ConvTranspose` keeps the same
  shape but spatially flipped.

  'subpixel' computes this as one stride-1 3x3 conv to 4 * features channels
  followed by depth-to-space (Shi et al. 2016, "Is the deconvolution layer the
  same as a convolutional layer?"): each output phase (a, b) uses a 2x2 subset
  of the 3x3 window. Its gradient is far faster than that of 'transpose'
  (`lax.conv_transpose`, input-dilated) on CPU; both give the same outputs.

  Attributes:
    features: output channels.
    use_bias: whether to add a bias per output channel.
    implementation: 'subpixel' or 'transpose'; same parameters, same function.
    dtype: the computation dtype; None infers it from inputs and parameters.
    param_dtype: the dtype of the parameters.
    precision: the `lax` precision of the convolution.
    kernel_init: initializer of the [4, 4, cin, features] kernel.
    bias_init: initializer of the bias.
  """
  features: int
  use_bias: bool = True
  implementation: Literal['subpixel', 'transpose'] = 'subpixel'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Upsamples NHWC `x` [N, H, W, cin] to [N, 2H, 2W, features]."""
    if self.implementation not in ('subpixel', 'transpose'):
      raise ValueError(f"implementation must be 'subpixel' or 'transpose', "
                       f'not {self.implementation!r}')
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.implementation == 'subpixel':
      y = jax.lax.conv_general_dilated(
          x, subpixel_kernel(kernel), (1, 1), ((1, 1), (1, 1)),
          dimension_numbers=_DIMENSION_NUMBERS, precision=self.precision)
      y = depth_to_space(y)
    else:
      # Input dilated by 2, then correlated with the flipped kernel: padding
      # 4 - 1 - 1 = 2 each side puts input i's tap k at 2i - 1 + k.
      y = jax.lax.conv_transpose(
          x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
          dimension_numbers=_DIMENSION_NUMBERS, precision=self.precision)
    return y if bias is None else y + bias

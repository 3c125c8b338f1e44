"""StyleGAN2's layers (Karras et al., 2020): modulated and demodulated convolutions (the
first of each generator block upsampling as the reference's does) and noise inputs with
learned strengths. Its [1, 3, 3, 1] resampling is resample.py's.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.layers.convolutions import Implementation, conv_same, conv_valid
from gan_jax.layers.karras import EqualizedDense
from gan_jax.layers.resample import conv_padding, upfirdn2d

DEMODULATION_EPSILON = 1e-8


def modulated_weights(kernel: jax.Array, styles: jax.Array, demodulate: bool = True) -> jax.Array:
  """Each example's kernel: `kernel` [k, k, cin, cout] scaled per input channel by its
  `styles` [B, cin] and, with `demodulate`, rescaled to unit L2 norm per output channel.

  Returns [B, k, k, cin, cout]. Demodulation replaces StyleGAN's instance norm: it removes
  the style's effect on the output's scale from the weights, statistically, instead of from
  the activations, which is what made StyleGAN's droplet artifacts.
  """
  weights = kernel[None] * styles[:, None, None, :, None]
  if demodulate:
    weights *= jax.lax.rsqrt(jnp.sum(jnp.square(weights), axis=(1, 2, 3), keepdims=True)
                             + DEMODULATION_EPSILON)
  return weights


class ModulatedConv(nn.Module):
  """A stride-1 'same' convolution whose kernel each example's style modulates (and, with
  `demodulate`, demodulates): `modulated_weights` applied to x. With `up` 2 it doubles the
  side first, as the reference's conv2d_resample(up=2): x upsampled by zero insertion,
  padded once for both the [1, 3, 3, 1] filter (gain 4) and the kernel
  (`resample.conv_padding`), filtered, then convolved where the kernel fits. (The reference
  runs it as a transposed convolution with the kernel flipped: the same layer,
  reparametrised.)

  It computes the per-example convolution as StyleGAN2's non-fused path does, with one
  shared kernel: scale x's input channels by the style, convolve, scale each output channel
  by the demodulation factor. The style is an equalized dense map of w whose bias starts at 1.

  Attributes:
    features: output channels.
    kernel_size: k (odd).
    demodulate: False for the toRGB layers.
    up: 1, or 2 to upsample.
    implementation: layers.Conv's; the same function either way.
  """
  features: int
  kernel_size: int = 3
  demodulate: bool = True
  up: int = 1
  dtype: Any = None
  implementation: Implementation = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    size, cin = self.kernel_size, x.shape[-1]
    styles = EqualizedDense(cin, gain=1.0, bias_init=1.0, name='style')(w)
    kernel = self.param('kernel', nn.initializers.normal(1.0),
                        (size, size, cin, self.features))
    if not self.demodulate:  # toRGB: the equalized learning rate's scale, on the style
      styles *= 1 / math.sqrt(size * size * cin)
    x, kernel, styles = nn.dtypes.promote_dtype(x, kernel, styles, dtype=self.dtype)
    x = x * styles[:, None, None, :]
    if self.up == 1:
      y = conv_same(x, kernel, self.implementation)
    else:
      x = upfirdn2d(x, up=self.up, padding=conv_padding(size, up=self.up), gain=self.up ** 2)
      y = conv_valid(x, kernel, implementation=self.implementation)
    if self.demodulate:
      norms = jnp.einsum('bi,io->bo', jnp.square(styles), jnp.sum(jnp.square(kernel), (0, 1)))
      y *= jax.lax.rsqrt(norms + DEMODULATION_EPSILON)[:, None, None, :]
    return y


class NoiseInput(nn.Module):
  """Adds per-pixel Gaussian noise, one image per example shared by the channels, times a
  learned strength that starts at 0 (StyleGAN): G's stochastic detail. The noise comes from
  the 'noise' random stream; applied without one, the layer adds none."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    strength = self.param('strength', nn.initializers.zeros, ())
    if not self.has_rng('noise'):
      return x
    noise = jax.random.normal(self.make_rng('noise'), x.shape[:-1] + (1,), jnp.float32)
    return x + (strength * noise).astype(x.dtype)

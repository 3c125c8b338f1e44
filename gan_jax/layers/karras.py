"""The layers of Karras et al.'s Progressive GAN (2018), which StyleGAN2 keeps: the equalized
learning rate, pixel-wise feature normalisation and the minibatch standard deviation.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.layers.convolutions import Implementation, conv_same, conv_valid
from gan_jax.layers.resample import conv_padding, upfirdn2d

LEAKY_RELU_SLOPE = 0.2  # ProGAN's and StyleGAN's activations
HE_GAIN = math.sqrt(2.0)  # He et al. (2015): keeps activations' scale through leaky ReLUs


def features_at(width: int, side: int) -> int:
  """Channels at feature maps of `side`: `width` up to 32x32, halved at every doubling after
  (ProGAN's and StyleGAN2's rule: 512, then 256 at 64x64, ...)."""
  return max(1, min(width, width * 32 // side))


def he_scale(fan_in: int, gain: float = HE_GAIN) -> float:
  """The equalized learning rate's run-time weight scale, He's constant gain / sqrt(fan_in)."""
  return gain / math.sqrt(fan_in)


class EqualizedDense(nn.Module):
  """A dense layer with an equalized learning rate (Karras et al., 2018).

  Its weights are drawn from N(0, 1) and multiplied at run time by `he_scale(fan_in, gain)`
  instead of being initialised at that scale: Adam's step is then the same size relative to
  every layer's weights, whatever its fan-in. `lr_multiplier` c (StyleGAN's mapping network:
  0.01) draws weights from N(0, 1/c^2) and scales weights and bias by c, so Adam's steps
  move them c times slower.

  Attributes:
    features: output units.
    gain: He's gain (sqrt(2) before a leaky ReLU, 1 for a linear output).
    lr_multiplier: c above.
    bias_init: the bias's initial value (as the layer computes it, after scaling).
  """
  features: int
  gain: float = HE_GAIN
  lr_multiplier: float = 1.0
  bias_init: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.normal(1.0 / self.lr_multiplier),
                        (x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.constant(self.bias_init / self.lr_multiplier),
                      (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    scale = he_scale(x.shape[-1], self.gain) * self.lr_multiplier
    return jnp.dot(x, kernel * scale) + bias * self.lr_multiplier


class EqualizedConv(nn.Module):
  """A stride-1 'same' k x k convolution with an equalized learning rate: a kernel drawn
  from N(0, 1) and multiplied at run time by `he_scale(k * k * cin, gain)`.

  With `down` 2 it halves the side as StyleGAN2's reference Conv2dLayer(down=2) does
  (conv2d_resample): the input padded once for the [1, 3, 3, 1] low-pass filter and the
  kernel together, filtered, then convolved at stride 2 where the kernel fits, so that the
  bias and any activation come after the blur. (For a 1x1 kernel the reference filters only
  the pixels it keeps: the same function.)

  Attributes:
    features: output channels.
    kernel_size: k (odd).
    gain: He's gain (sqrt(2) before a leaky ReLU, 1 for an image output).
    use_bias: whether to add a bias per output channel.
    implementation: layers.Conv's; the same function either way.
    down: 1, or 2 to downsample.
  """
  features: int
  kernel_size: int = 3
  gain: float = HE_GAIN
  use_bias: bool = True
  dtype: Any = None
  implementation: Implementation = 'auto'
  down: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    size = self.kernel_size
    kernel = self.param('kernel', nn.initializers.normal(1.0),
                        (size, size, x.shape[-1], self.features))
    scale = he_scale(size * size * x.shape[-1], self.gain)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    if self.down == 1:
      y = conv_same(x, kernel * scale, self.implementation)
    else:
      x = upfirdn2d(x, padding=conv_padding(size, down=self.down))
      y = conv_valid(x, kernel * scale, self.down, self.implementation)
    if self.use_bias:
      y += self.param('bias', nn.initializers.zeros, (self.features,)).astype(y.dtype)
    return y


def pixel_norm(x: jax.Array, epsilon: float = 1e-8) -> jax.Array:
  """Each position's feature vector scaled to unit mean square (ProGAN's generator): keeps
  G's and D's competition from escalating the feature magnitudes."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + epsilon)


def minibatch_stddev(x: jax.Array, group_size: int = 4, epsilon: float = 1e-8) -> jax.Array:
  """Appends one channel: the standard deviation across a group of examples of each feature
  at each position, averaged over features and positions (Karras et al., 2018).

  D then sees how varied a batch is, and can reject a generator that collapses. Groups are
  runs of `group_size` consecutive examples (min(group_size, batch)), so a batch of reals
  followed by as many fakes is never mixed while both are multiples of the group size.
  ProGAN's code takes every M-th example instead; the groups are as random either way.

  x: [N, H, W, C] -> [N, H, W, C + 1]; N must be a multiple of the group size.
  """
  n, h, w, c = x.shape
  group = min(group_size, n)
  if n % group:
    raise ValueError(f'minibatch stddev: a batch of {n} does not split into groups of {group}')
  groups = x.astype(jnp.float32).reshape(n // group, group, h, w, c)
  stddev = jnp.sqrt(jnp.var(groups, axis=1) + epsilon)  # [N / group, H, W, C]
  per_group = jnp.mean(stddev, axis=(1, 2, 3))
  channel = jnp.broadcast_to(jnp.repeat(per_group, group)[:, None, None, None], (n, h, w, 1))
  return jnp.concatenate([x, channel.astype(x.dtype)], axis=-1)

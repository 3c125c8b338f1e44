"""DCGAN (Radford et al., 2016): strided (transposed) convolutions, batch norm in G."""
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import layers

# DCGAN's convolutions use N(0, 0.02) weights (Radford et al., 2016).
_dcgan_init = nn.initializers.normal(0.02)


def dcgan_base_size(image_size: int) -> int | None:
  """The side of DCGAN's first feature map (4 or 7), or None if no base doubles to `image_size`."""
  for base in (4, 7):
    doublings = math.log2(image_size / base)
    if image_size > base and doublings == int(doublings):
      return base
  return None


class DCGANGenerator(nn.Module):
  """DCGAN generator: latent -> dense -> stride-2 up-convolutions -> tanh image.

  With `width=64` and 64x64x3 images it is the generator of Radford et al. (2016) and
  pytorch/examples' dcgan: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3.
  28x28 images start from 7x7 (7x7x128 -> 14x14x64 -> 28x28x1).
  """
  data_shape: tuple[int, int, int]
  width: int = 64
  batch_norm: bool = True
  batch_norm_axis: str | None = None  # 'data' for statistics over all devices
  conv_implementation: layers.Implementation = 'auto'
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    del labels  # unconditional
    height, _, channels = self.data_shape
    base = dcgan_base_size(height)
    doublings = int(math.log2(height // base))
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             axis_name=self.batch_norm_axis if train else None, dtype=self.dtype)
    features = self.width * 2 ** (doublings - 1)
    x = nn.Dense(base * base * features, use_bias=not self.batch_norm, dtype=self.dtype)(z)
    x = x.reshape((z.shape[0], base, base, features))
    for i in range(doublings):
      if self.batch_norm:
        x = norm()(x)
      x = nn.relu(x)
      last = i == doublings - 1
      features = channels if last else features // 2
      x = layers.UpConv(features, use_bias=last or not self.batch_norm,
                        implementation=self.conv_implementation, dtype=self.dtype,
                        kernel_init=_dcgan_init)(x)
    return jnp.tanh(x.astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
  """DCGAN discriminator: stride-2 4x4 convolutions with leaky ReLU, then one logit.

  The mirror image of DCGANGenerator: 64x64x3 -> 32x32x64 -> ... -> 4x4x512 -> logit.
  Without batch norm by default, so the WGAN-GP penalty stays per example and spectral
  norm suffices. `batch_norm=True` is Radford et al.'s and PyTorch's discriminator (batch
  norm after every convolution but the first).
  """
  width: int = 64
  spectral_norm: bool = False
  batch_norm: bool = False
  batch_norm_axis: str | None = None
  conv_implementation: layers.Implementation = 'auto'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    del labels  # unconditional
    base = dcgan_base_size(x.shape[1])
    features = self.width
    while x.shape[1] > base:
      normalize = self.batch_norm and features > self.width
      conv = layers.DownConv(features, use_bias=not normalize,
                             implementation=self.conv_implementation, dtype=self.dtype,
                             kernel_init=_dcgan_init)
      x = layers.maybe_spectral_norm(conv, self.spectral_norm, x, train)
      if normalize:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                         axis_name=self.batch_norm_axis if train else None)(x)
      x = nn.leaky_relu(x, 0.2)
      features *= 2
    x = x.reshape((x.shape[0], -1))
    logits = layers.maybe_spectral_norm(nn.Dense(1, dtype=self.dtype), self.spectral_norm, x, train)
    return logits[:, 0].astype(jnp.float32)


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, int, int],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The DCGAN pair of config.model for images of `data_shape` (unconditional)."""
  del num_classes
  model = config.model
  axis = 'data' if model.sync_batch_norm else None
  common = dict(conv_implementation=model.conv_implementation,
                dtype=jnp.dtype(model.compute_dtype))
  return (DCGANGenerator(data_shape, model.width, model.g_batch_norm, axis, **common),
          DCGANDiscriminator(model.width, model.spectral_norm, model.d_batch_norm, axis, **common))

"""Generators and discriminators as Flax linen modules.

Everything downstream calls `generator.apply(variables, z, train=...)` and
`discriminator.apply(variables, x, train=...)`. Discriminators return logits [B];
the loss applies the sigmoid where it has one. `train=True` is the network's own
training pass: batch norm uses batch statistics and spectral norm advances its
power iteration (both kept in the 'batch_stats' collection). `dtype` is the
computation dtype (bfloat16 for mixed precision); parameters stay float32, and
outputs are float32 so losses and images are computed at full precision.
"""
import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import layers
from gan_jax.errors import UserError, unknown_name_error

LATENT_PRIORS = ('gaussian', 'uniform')
# DCGAN's convolutions use N(0, 0.02) weights (Radford et al., 2016).
_dcgan_init = nn.initializers.normal(0.02)


def sample_latents(key: jax.Array, shape: tuple[int, ...], prior: str) -> jax.Array:
  """Draws latents from the prior: 'gaussian' N(0, I) or 'uniform' U[-1, 1]."""
  if prior == 'gaussian':
    return jax.random.normal(key, shape)
  if prior == 'uniform':
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  raise unknown_name_error('latent prior', prior, LATENT_PRIORS)


def _maybe_spectral_norm(layer: nn.Module, spectral_norm: bool, x: jax.Array,
                         train: bool) -> jax.Array:
  """Applies `layer`, spectrally normalised if asked (Miyato et al., 2018)."""
  if spectral_norm:
    return nn.SpectralNorm(layer)(x, update_stats=train)
  return layer(x)


class MLPGenerator(nn.Module):
  """Fully connected generator: the original GAN's, and the one for 2-D toy data."""
  data_shape: tuple[int, ...]
  width: int = 256
  num_layers: int = 3
  tanh_output: bool = True  # images live in [-1, 1]; toy points are unbounded
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # no batch norm: the same function in both modes
    x = z
    for _ in range(self.num_layers):
      x = nn.relu(nn.Dense(self.width, dtype=self.dtype)(x))
    x = nn.Dense(math.prod(self.data_shape), dtype=self.dtype)(x).astype(jnp.float32)
    if self.tanh_output:
      x = jnp.tanh(x)
    return x.reshape((z.shape[0],) + tuple(self.data_shape))


class MLPDiscriminator(nn.Module):
  """Fully connected discriminator returning one logit per example."""
  width: int = 256
  num_layers: int = 3
  spectral_norm: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.num_layers):
      dense = nn.Dense(self.width, dtype=self.dtype)
      x = nn.leaky_relu(_maybe_spectral_norm(dense, self.spectral_norm, x, train), 0.2)
    logits = _maybe_spectral_norm(nn.Dense(1, dtype=self.dtype), self.spectral_norm, x, train)
    return logits[:, 0].astype(jnp.float32)


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
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
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
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    base = dcgan_base_size(x.shape[1])
    features = self.width
    while x.shape[1] > base:
      normalize = self.batch_norm and features > self.width
      conv = layers.DownConv(features, use_bias=not normalize,
                             implementation=self.conv_implementation, dtype=self.dtype,
                             kernel_init=_dcgan_init)
      x = _maybe_spectral_norm(conv, self.spectral_norm, x, train)
      if normalize:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                         axis_name=self.batch_norm_axis if train else None)(x)
      x = nn.leaky_relu(x, 0.2)
      features *= 2
    x = x.reshape((x.shape[0], -1))
    logits = _maybe_spectral_norm(nn.Dense(1, dtype=self.dtype), self.spectral_norm, x, train)
    return logits[:, 0].astype(jnp.float32)


def _build_mlp(config, data_shape):
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  return (MLPGenerator(data_shape, model.width, model.mlp_layers, tanh_output=len(data_shape) > 1,
                       dtype=dtype),
          MLPDiscriminator(model.width, model.mlp_layers, model.spectral_norm, dtype=dtype))


def _build_dcgan(config, data_shape):
  model = config.model
  axis = 'data' if model.sync_batch_norm else None
  common = dict(conv_implementation=model.conv_implementation,
                dtype=jnp.dtype(model.compute_dtype))
  return (DCGANGenerator(data_shape, model.width, model.g_batch_norm, axis, **common),
          DCGANDiscriminator(model.width, model.spectral_norm, model.d_batch_norm, axis, **common))


MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    'mlp': _build_mlp,
    'dcgan': _build_dcgan,
}


def check_data_shape(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> None:
  """Raises UserError if config.model cannot produce examples of `data_shape`."""
  if config.model.name != 'dcgan':
    return
  if len(data_shape) != 3:
    raise UserError(f'model dcgan makes images, but dataset {config.dataset!r} holds points of '
                    f'shape {data_shape}; use --config.model.name=mlp.')
  height, width, _ = data_shape
  if height != width or dcgan_base_size(height) is None:
    raise UserError(f'model dcgan cannot make {height}x{width} images: it needs square images '
                    'of side 4 * 2**k or 7 * 2**k (28, 32, 64, 128, ...).')


def build(config: ml_collections.ConfigDict,
          data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) for config.model and examples of `data_shape`."""
  if config.model.name not in MODELS:
    raise unknown_name_error('model', config.model.name, MODELS)
  check_data_shape(config, data_shape)
  return MODELS[config.model.name](config, tuple(data_shape))

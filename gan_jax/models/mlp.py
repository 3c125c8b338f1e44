"""Fully connected networks: the original GAN's, and the ones for 2-D toy data."""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import layers


class MLPGenerator(nn.Module):
  """Fully connected generator: the original GAN's, and the one for 2-D toy data."""
  data_shape: tuple[int, ...]
  width: int = 256
  num_layers: int = 3
  tanh_output: bool = True  # images live in [-1, 1]; toy points are unbounded
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    del labels, train  # unconditional, and no batch norm: the same function in both modes
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
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    del labels  # unconditional
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.num_layers):
      dense = nn.Dense(self.width, dtype=self.dtype)
      x = nn.leaky_relu(layers.maybe_spectral_norm(dense, self.spectral_norm, x, train), 0.2)
    logits = layers.maybe_spectral_norm(nn.Dense(1, dtype=self.dtype), self.spectral_norm, x, train)
    return logits[:, 0].astype(jnp.float32)


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The MLP pair of config.model for examples of `data_shape` (unconditional)."""
  del num_classes
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  return (MLPGenerator(data_shape, model.width, model.mlp_layers, tanh_output=len(data_shape) > 1,
                       dtype=dtype),
          MLPDiscriminator(model.width, model.mlp_layers, model.spectral_norm, dtype=dtype))

"""BigGAN (Brock et al., 2019) at its CIFAR-10 layout, on models/resnet.py's blocks.

BigGAN is SNGAN's ResNet with: spectral norm in G as well as D; G's batch norms
conditioned by a shared class embedding concatenated with a chunk of z (a hierarchical
latent: z is split into one chunk per block plus one for the dense layer, so every
resolution gets latent input of its own); optional self-attention; orthogonal
initialisation; and blocks whose hidden width is their output's. With width 256
(BigGAN-PyTorch's ch=64 times 4) and 32x32 images it is BigGAN-PyTorch's arch[32]:
three G blocks of 256 channels; four D blocks of 256, the first two downsampling.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import layers
from gan_jax.models import resnet

# BigGAN-PyTorch's G_init = D_init = 'ortho': every weight an orthogonal matrix (Saxe et
# al., 2014), convolution kernels as [kh * kw * cin, cout].
_orthogonal_init = nn.initializers.orthogonal()


def latent_chunk_sizes(latent_dim: int, num_chunks: int) -> list[int]:
  """The sizes z is split into: equal, the first ones one larger where `num_chunks` does
  not divide `latent_dim` (BigGAN-PyTorch rounds latent_dim down instead)."""
  size, remainder = divmod(latent_dim, num_chunks)
  return [size + (i < remainder) for i in range(num_chunks)]


class BigGANGenerator(nn.Module):
  """BigGAN's generator: z's first chunk -> SN dense 4x4 map -> SN GBlocks conditioned on
  [shared class embedding, next chunk of z] -> BN-ReLU-SN conv3x3-tanh.

  Unconditional (`num_classes` 0), the blocks are conditioned on their chunk of z alone.
  `attention_resolution` puts SelfAttention after the block of that side.
  """
  data_shape: tuple[int, int, int]
  width: int = 256
  width_growth: int = 1
  num_classes: int = 0
  attention_resolution: int = 0
  shared_embedding_dim: int = 128  # the paper's
  batch_norm_axis: str | None = None  # 'data' for statistics over all devices
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'  # layers.Conv's

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    side, _, channels = self.data_shape
    num_blocks = resnet.num_generator_blocks(side)
    base, *block_features = resnet.generator_features(self.width, self.width_growth,
                                                       num_blocks)
    sizes = latent_chunk_sizes(z.shape[-1], num_blocks + 1)
    first, *conditions = jnp.split(z, np.cumsum(sizes)[:-1], axis=-1)
    if self.num_classes:
      if labels is None:
        raise ValueError(f'a generator of {self.num_classes} classes needs labels')
      shared = nn.Embed(self.num_classes, self.shared_embedding_dim,
                        embedding_init=_orthogonal_init, name='shared_embedding')(labels)
      conditions = [jnp.concatenate([shared, chunk], axis=-1) for chunk in conditions]
    dense = nn.Dense(16 * base, kernel_init=_orthogonal_init, dtype=self.dtype)
    x = layers.maybe_spectral_norm(dense, True, first, train).reshape((z.shape[0], 4, 4, base))
    for features, condition in zip(block_features, conditions):
      x = resnet.GBlock(features, spectral_norm=True, batch_norm_axis=self.batch_norm_axis,
                        conv_init=_orthogonal_init, kernel_init=_orthogonal_init,
                        dtype=self.dtype, conv_implementation=self.conv_implementation)(
                            x, condition=condition, train=train)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(True, _orthogonal_init, self.dtype,
                                 self.conv_implementation)(x, train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                             axis_name=self.batch_norm_axis if train else None)(x))
    conv = layers.Conv(channels, 3, kernel_init=_orthogonal_init, dtype=self.dtype,
                       implementation=self.conv_implementation)
    return jnp.tanh(layers.maybe_spectral_norm(conv, True, x, train).astype(jnp.float32))


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, int, int],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The BigGAN pair of config.model for images of `data_shape`; class-conditional if
  `num_classes` > 0. Spectral norm is BigGAN's in both networks, whatever
  config.model.spectral_norm says."""
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  generator = BigGANGenerator(data_shape, model.width, model.width_growth, num_classes,
                              model.attention_resolution,
                              batch_norm_axis='data' if model.sync_batch_norm else None,
                              dtype=dtype, conv_implementation=model.conv_implementation)
  discriminator = resnet.ResNetDiscriminator(
      model.d_width or model.width, model.width_growth, model.d_blocks_without_downsampling,
      num_classes, spectral_norm=True, wide=True,
      attention_resolution=model.attention_resolution, conv_init=_orthogonal_init,
      kernel_init=_orthogonal_init, dtype=dtype, conv_implementation=model.conv_implementation)
  return generator, discriminator

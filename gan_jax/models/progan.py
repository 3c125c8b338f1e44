"""Progressive GAN (Karras et al., 2018): networks that grow from 4x4 to the data's side.

As tkarras/progressive_growing_of_gans's networks.py: every layer has an equalized learning
rate and a leaky ReLU (0.2). G: pixel-normalised z -> dense 4x4 map -> conv3x3, then per
doubling a block (nearest upsampling, two conv3x3), each conv followed by pixel norm; a
1x1 'to_rgb' convolution per side makes a linear image. D mirrors it: a 1x1 'from_rgb' per
side, blocks of two conv3x3 and 2x2 average pooling, and at 4x4 the minibatch stddev
channel, a conv3x3 and two dense layers. Channels: `karras.features_at`.

The stage (growth.py) picks how many blocks run; while a stage fades in, the new block's
output is blended with the previous stage's by `alpha`. Every stage's layers are created at
initialisation, so the parameters keep one shape for the whole run.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import growth, layers
from gan_jax.layers import karras


_features = karras.features_at


def _leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, karras.LEAKY_RELU_SLOPE)


class ProGANGenerator(nn.Module):
  """z [B, latent] -> images [B, S, S, C] of the data's side S, made at `stage`'s side."""
  data_shape: tuple[int, int, int]
  width: int = 512
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  @property
  def num_stages(self) -> int:
    return growth.num_stages(self.data_shape[0])

  def _conv(self, features: int, name: str, size: int = 3,
            gain: float = karras.HE_GAIN) -> karras.EqualizedConv:
    return karras.EqualizedConv(features, size, gain, dtype=self.dtype,
                                implementation=self.conv_implementation, name=name)

  def _to_rgb(self, x: jax.Array) -> jax.Array:
    return self._conv(self.data_shape[-1], f'to_rgb_{x.shape[1]}', 1, gain=1.0)(x)

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = True,
               stage: int | None = None, alpha: jax.Array | float = 1.0) -> jax.Array:
    del labels, train  # unconditional; no batch statistics
    final_side, stage = self.data_shape[0], self.num_stages - 1 if stage is None else stage
    alpha = jnp.asarray(alpha, jnp.float32)
    act = lambda x: karras.pixel_norm(_leaky_relu(x))
    base = _features(self.width, growth.BASE_SIDE)
    # The 4x4 block: ProGAN's gain sqrt(2)/4 on the dense layer, one sixteenth per position.
    x = karras.EqualizedDense(16 * base, gain=karras.HE_GAIN / 4, dtype=self.dtype,
                              name='dense_4')(karras.pixel_norm(z))
    x = act(self._conv(base, 'conv_4')(act(x.reshape(z.shape[0], 4, 4, base))))
    for block_side in (growth.side(s) for s in range(1, stage + 1)):
      previous = x
      x = growth.upscale(x, block_side)
      for i in range(2):
        x = act(self._conv(_features(self.width, block_side), f'conv_{block_side}_{i}')(x))
    images = self._to_rgb(x)
    if stage:
      images = growth.fade(growth.upscale(self._to_rgb(previous), images.shape[1]), images,
                           alpha)
    if self.is_initializing():  # the other stages' output layers, for one parameter shape
      for other in range(stage - 1):
        side = growth.side(other)
        self._to_rgb(jnp.zeros((1, side, side, _features(self.width, side)), x.dtype))
    return growth.upscale(images.astype(jnp.float32), final_side)


class ProGANDiscriminator(nn.Module):
  """images [B, s, s, C] at a stage's side s -> logits [B]."""
  data_shape: tuple[int, int, int]
  width: int = 512
  mbstd_group_size: int = 4
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  def _conv(self, features: int, name: str, size: int = 3) -> karras.EqualizedConv:
    return karras.EqualizedConv(features, size, dtype=self.dtype,
                                implementation=self.conv_implementation, name=name)

  def _from_rgb(self, images: jax.Array) -> jax.Array:
    side = images.shape[1]
    return _leaky_relu(self._conv(_features(self.width, side), f'from_rgb_{side}', 1)(images))

  def _block(self, x: jax.Array) -> jax.Array:
    """Two conv3x3 at side s (the second to side s/2's channels), then 2x2 average pooling."""
    side = x.shape[1]
    x = _leaky_relu(self._conv(_features(self.width, side), f'conv_{side}_0')(x))
    x = _leaky_relu(self._conv(_features(self.width, side // 2), f'conv_{side}_1')(x))
    return growth.downscale(x, side // 2)

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None = None, train: bool = True,
               alpha: jax.Array | float = 1.0) -> jax.Array:
    del labels, train
    side = images.shape[1]
    x = self._from_rgb(images)
    if side > growth.BASE_SIDE:
      # The stage's new block, faded in over the previous stage's input layer.
      x = growth.fade(self._from_rgb(growth.downscale(images, side // 2)), self._block(x),
                      jnp.asarray(alpha, jnp.float32))
    while x.shape[1] > growth.BASE_SIDE:
      x = self._block(x)
    if self.is_initializing():  # the other stages' input layers, for one parameter shape
      for other in range(growth.num_stages(side) - 2):
        small = growth.side(other)
        self._from_rgb(jnp.zeros((1, small, small, self.data_shape[-1]), images.dtype))
    base = _features(self.width, growth.BASE_SIDE)
    x = karras.minibatch_stddev(x, self.mbstd_group_size)
    x = _leaky_relu(self._conv(base, 'conv_4')(x))
    x = _leaky_relu(karras.EqualizedDense(base, dtype=self.dtype, name='dense_4')(
        x.reshape(x.shape[0], -1)))
    logits = karras.EqualizedDense(1, gain=1.0, dtype=self.dtype, name='logit')(x)
    return logits[:, 0].astype(jnp.float32)


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, int, int],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The ProGAN pair of config.model for images of `data_shape` (unconditional)."""
  del num_classes
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  return (ProGANGenerator(data_shape, model.width, dtype, model.conv_implementation),
          ProGANDiscriminator(data_shape, model.width, model.mbstd_group_size, dtype,
                              model.conv_implementation))

"""ResNet GANs: SNGAN (Miyato et al., 2018), class-conditional with a projection
discriminator (Miyato & Koyama, 2018), and the residual blocks BigGAN shares.

The layout follows SNGAN's chainer code as Mimicry's sngan_32 and sngan_64 restate it.
G: a dense map of z to 4x4, one up-sampling block per doubling up to the image side,
BN-ReLU-conv3x3-tanh. D: one block more than G, all downsampling 2x but the last
`blocks_without_downsampling`, then ReLU, a sum over positions and a linear map.
Channels: `width` in G's last block and D's first; with `width_growth` 2 they double at
every halving of the resolution (G's 4x4 map has width * 2**blocks).
"""
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import layers
from gan_jax.errors import UserError

Initializer = nn.initializers.Initializer

# SNGAN's initialisation (its chainer code, and Mimicry's): Xavier-uniform weights, with
# gain sqrt(2) in the 3x3 convolutions of the residual branches (each followed by a ReLU
# somewhere) and gain 1 everywhere else.
_residual_init = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
_xavier_init = nn.initializers.xavier_uniform()


def num_generator_blocks(image_side: int) -> int | None:
  """G's up-sampling blocks from 4x4 to `image_side` (3 for 32, 4 for 64), or None if none fit."""
  doublings = math.log2(image_side / 4) if image_side > 4 else 0
  return int(doublings) if doublings >= 1 and doublings == int(doublings) else None


def generator_features(width: int, growth: int, num_blocks: int) -> list[int]:
  """Channels of G's 4x4 map, then after each block: `width` after the last, `growth` times
  more at each block before it."""
  return [width * growth ** (num_blocks - i) for i in range(num_blocks + 1)]


def discriminator_layout(width: int, growth: int, num_blocks: int,
                         blocks_without_downsampling: int) -> list[tuple[int, bool]]:
  """(channels, downsamples) of each D block: the first has `width`, each later downsampling
  block `growth` times its predecessor's; the last `blocks_without_downsampling` keep theirs."""
  layout, features = [], width
  for i in range(num_blocks):
    downsample = i < num_blocks - blocks_without_downsampling
    if downsample and i:
      features *= growth
    layout.append((features, downsample))
  return layout


def attention_sides(image_side: int, blocks_without_downsampling: int) -> list[int]:
  """The feature-map sides that both G's and D's blocks output, where attention can go."""
  num_blocks = num_generator_blocks(image_side)
  smallest_d_side = image_side >> (num_blocks + 1 - blocks_without_downsampling)
  return [side for side in (8 << i for i in range(num_blocks))
          if smallest_d_side <= side < image_side]


def check_layout(name: str, model: ml_collections.ConfigDict,
                 data_shape: tuple[int, ...]) -> None:
  """Raises UserError if `model`'s ResNet layout cannot make images of `data_shape`."""
  height, width, _ = data_shape
  num_blocks = num_generator_blocks(height)
  if height != width or num_blocks is None:
    raise UserError(f'model {name} cannot make {height}x{width} images: it needs square images '
                    'of side 4 * 2**k (8, 16, 32, 64, ...). For 28x28 Fashion-MNIST, resize '
                    'them: --config.data.image_size=32.')
  if model.d_blocks_without_downsampling > num_blocks:
    raise UserError(f'config.model.d_blocks_without_downsampling must be at most {num_blocks} '
                    f'for {height}x{height} images (D has {num_blocks + 1} blocks and the first '
                    f'downsamples), got {model.d_blocks_without_downsampling}.')
  sides = attention_sides(height, model.d_blocks_without_downsampling)
  if model.attention_resolution and model.attention_resolution not in sides:
    raise UserError(f'config.model.attention_resolution must be 0 (none) or a side both '
                    f'networks pass through ({", ".join(map(str, sides)) or "none here"}), got '
                    f'{model.attention_resolution}.')


def _upsample(x: jax.Array) -> jax.Array:
  """2x nearest-neighbour upsampling (SNGAN's and BigGAN's; Mimicry's is bilinear)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv(x: jax.Array, features: int, size: int, kernel_init: Initializer,
          spectral_norm: bool, train: bool, dtype: Any,
          implementation: layers.Implementation = 'auto') -> jax.Array:
  """A size x size, stride-1, 'same' convolution with a bias, spectrally normalised if asked
  (layers.Conv: nn.Conv's parameters, run as `implementation`)."""
  conv = layers.Conv(features, size, kernel_init=kernel_init, dtype=dtype,
                     implementation=implementation)
  return layers.maybe_spectral_norm(conv, spectral_norm, x, train)


class GBlock(nn.Module):
  """G's up-sampling residual block (SNGAN's; BigGAN's GBlock).

  BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus a shortcut: upsample-conv1x1. The 1x1
  convolution commutes with nearest-neighbour upsampling, so it runs first, on 4x fewer
  positions. The batch norms are ConditionalBatchNorm: per class with `num_classes` > 0,
  from a conditioning vector where one is passed (BigGAN), plain otherwise.
  """
  features: int
  num_classes: int = 0
  spectral_norm: bool = False
  batch_norm_axis: str | None = None
  conv_init: Initializer = _residual_init  # the residual branch's 3x3 convolutions
  kernel_init: Initializer = _xavier_init  # the shortcut and the batch norms' linear maps
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               condition: jax.Array | None = None, train: bool = True) -> jax.Array:
    norm = functools.partial(layers.ConditionalBatchNorm, self.num_classes, self.spectral_norm,
                             axis_name=self.batch_norm_axis, kernel_init=self.kernel_init,
                             dtype=self.dtype)
    conv = functools.partial(_conv, features=self.features, spectral_norm=self.spectral_norm,
                             train=train, dtype=self.dtype,
                             implementation=self.conv_implementation)
    h = nn.relu(norm()(x, labels, condition, train))
    h = conv(_upsample(h), size=3, kernel_init=self.conv_init)
    h = nn.relu(norm()(h, labels, condition, train))
    h = conv(h, size=3, kernel_init=self.conv_init)
    return h + _upsample(conv(x, size=1, kernel_init=self.kernel_init))


class DBlock(nn.Module):
  """D's residual block (SNGAN's; BigGAN's DBlock).

  ReLU-conv3x3-ReLU-conv3x3, then 2x2 average pooling if `downsample`, plus a shortcut:
  average pooling if `downsample`, then a 1x1 convolution if it downsamples or changes the
  width (identity otherwise). Pooling commutes with the 1x1 convolution, so it runs first.
  `first` is SNGAN's "optimized" block (BigGAN's preactivation=False) for the image: no
  ReLU before the first convolution.
  """
  features: int
  downsample: bool = True
  first: bool = False
  wide: bool = False  # hidden channels: `features` (BigGAN's D_wide) or the input's (SNGAN's)
  spectral_norm: bool = True
  conv_init: Initializer = _residual_init  # the residual branch's 3x3 convolutions
  kernel_init: Initializer = _xavier_init  # the shortcut's 1x1 convolution
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    conv = functools.partial(_conv, spectral_norm=self.spectral_norm, train=train,
                             dtype=self.dtype, implementation=self.conv_implementation)
    hidden = self.features if self.wide or self.first else x.shape[-1]
    h = conv(x if self.first else nn.relu(x), hidden, 3, self.conv_init)
    h = conv(nn.relu(h), self.features, 3, self.conv_init)
    shortcut = x
    if self.downsample:
      h, shortcut = _downsample(h), _downsample(x)
    if self.downsample or x.shape[-1] != self.features:
      shortcut = conv(shortcut, self.features, 1, self.kernel_init)
    return h + shortcut


class ResNetGenerator(nn.Module):
  """SNGAN's ResNet generator: z -> dense 4x4 map -> GBlocks -> BN-ReLU-conv3x3-tanh.

  With width 256 and 32x32x3 images it is SNGAN's CIFAR-10 generator (Miyato et al.,
  2018, Table 4; Mimicry's sngan_32): three blocks of 256 channels. With width 64,
  width_growth 2 and 64x64 images it is Mimicry's sngan_64: 1024 channels at 4x4 halving
  to 64. With `num_classes` > 0 the blocks' batch norms are per class (Miyato & Koyama,
  2018); `attention_resolution` puts SelfAttention after the block of that side (SAGAN).
  """
  data_shape: tuple[int, int, int]
  width: int = 256
  width_growth: int = 1
  num_classes: int = 0
  attention_resolution: int = 0
  batch_norm_axis: str | None = None  # 'data' for statistics over all devices
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'  # layers.Conv's

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    side, _, channels = self.data_shape
    base, *block_features = generator_features(self.width, self.width_growth,
                                               num_generator_blocks(side))
    x = nn.Dense(16 * base, kernel_init=_xavier_init, dtype=self.dtype)(z)
    x = x.reshape((z.shape[0], 4, 4, base))
    for features in block_features:
      x = GBlock(features, self.num_classes, batch_norm_axis=self.batch_norm_axis,
                 dtype=self.dtype, conv_implementation=self.conv_implementation)(
                     x, labels, train=train)
      if x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(kernel_init=_xavier_init, dtype=self.dtype,
                                 conv_implementation=self.conv_implementation)(x, train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                             axis_name=self.batch_norm_axis if train else None)(x))
    x = _conv(x, channels, 3, _xavier_init, False, train, self.dtype, self.conv_implementation)
    return jnp.tanh(x.astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
  """SNGAN's ResNet discriminator: DBlocks, ReLU, sum over positions, linear (+ projection).

  With width 128 and 32x32 images it is SNGAN's CIFAR-10 discriminator (Mimicry's
  sngan_32): an optimized block to 16x16, one downsampling block to 8x8 and two more at
  8x8, all of 128 channels. With width 64, width_growth 2 and no blocks without
  downsampling, 64x64 images get Mimicry's sngan_64 (64 -> 1024 channels, 2x2 at the
  end). With `num_classes` > 0 the class enters through a projection head (Miyato &
  Koyama, 2018). BigGAN's discriminator is this one with `wide` blocks, orthogonal
  initialisation and optionally attention.
  """
  width: int = 128
  width_growth: int = 1
  blocks_without_downsampling: int = 2
  num_classes: int = 0
  spectral_norm: bool = True
  wide: bool = False  # hidden channels of each block: its output's (BigGAN) or its input's
  attention_resolution: int = 0  # SelfAttention after the block that downsamples to this side
  conv_init: Initializer = _residual_init  # the residual branches' 3x3 convolutions
  kernel_init: Initializer = _xavier_init  # every other weight
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'  # layers.Conv's

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    num_blocks = num_generator_blocks(x.shape[1]) + 1
    layout = discriminator_layout(self.width, self.width_growth, num_blocks,
                                  self.blocks_without_downsampling)
    for i, (features, downsample) in enumerate(layout):
      x = DBlock(features, downsample, first=i == 0, wide=self.wide,
                 spectral_norm=self.spectral_norm, conv_init=self.conv_init,
                 kernel_init=self.kernel_init, dtype=self.dtype,
                 conv_implementation=self.conv_implementation)(x, train)
      if downsample and x.shape[1] == self.attention_resolution:
        x = layers.SelfAttention(self.spectral_norm, self.kernel_init, self.dtype,
                                 self.conv_implementation)(x, train)
    h = jnp.sum(nn.relu(x), axis=(1, 2))
    return layers.ProjectionHead(self.num_classes, self.spectral_norm, self.kernel_init,
                                 self.dtype)(h, labels, train)


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, int, int],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The SNGAN pair of config.model for images of `data_shape`; class-conditional if
  `num_classes` > 0."""
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  generator = ResNetGenerator(data_shape, model.width, model.width_growth, num_classes,
                              model.attention_resolution,
                              'data' if model.sync_batch_norm else None, dtype,
                              model.conv_implementation)
  discriminator = ResNetDiscriminator(model.d_width or model.width, model.width_growth,
                                      model.d_blocks_without_downsampling, num_classes,
                                      model.spectral_norm,
                                      attention_resolution=model.attention_resolution,
                                      dtype=dtype,
                                      conv_implementation=model.conv_implementation)
  return generator, discriminator

"""StyleGAN2 (Karras et al., 2020): a mapping network to W, a synthesis network of modulated
convolutions with noise inputs and skip connections to the image, and a residual
discriminator with the minibatch stddev, as NVlabs/stylegan2-ada-pytorch's networks.py
('skip' G, 'resnet' D).

Every layer has an equalized learning rate (the mapping network's 100x slower) and
activations are leaky ReLUs times sqrt(2). The synthesis network starts from a learned
4x4 constant; each doubling upsamples, applies two modulated 3x3 convolutions (each with
its own w, noise and bias) and adds its toRGB output to the upsampled image so far. Layer
i reads w_i of ws [B, num_ws, w_dim]: one w for all of them, or after style mixing two.
Resampling is the reference's upfirdn2d with the [1, 3, 3, 1] filter and zeros beyond the
border (layers/resample.py): G's first convolution of a block upsamples, D's second one
and its residual branch's 1x1 downsample (blur, then a stride-2 convolution, then the
bias and activation); channels follow `karras.features_at`.

G keeps the running average of w (for truncation) in 'batch_stats', and the path-length
regulariser's running mean of path lengths beside it, so both live in the train state. Every
training pass through the mapping network moves w_avg (the step's generator pass and the
path-length pass; not the style-mixing second latent's), and the EMA generator copies it
(models.EMA_COPIES_BATCH_STATS), as in the reference. One difference stays: gan_jax's D and G
updates share one generator pass where the reference runs one each, so w_avg moves 1.25
times per step (pl_every 4) where the reference's moves 2.25 times.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import layers
from gan_jax.layers import karras, resample, style

W_AVG_BETA = 0.995  # the running average of w: StyleGAN2's decay per mapping pass
_GAIN = math.sqrt(2.0)


def _act(x: jax.Array) -> jax.Array:
  """StyleGAN2's activation: a leaky ReLU with He's gain on its output."""
  return nn.leaky_relu(x, karras.LEAKY_RELU_SLOPE) * _GAIN


def num_ws(side: int) -> int:
  """The ws a generator of `side` x `side` images reads: two per resolution from 4x4 on
  (4x4's conv and toRGB; then each block's second conv and toRGB, its first conv sharing
  the previous block's toRGB w)."""
  return 2 * (int(math.log2(side)) - 1)


class MappingNetwork(nn.Module):
  """z -> w: pixel norm, then `num_layers` equalized dense layers at 1/100 the learning rate."""
  w_dim: int
  num_layers: int = 8
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    x = karras.pixel_norm(z)
    for i in range(self.num_layers):
      x = _act(karras.EqualizedDense(self.w_dim, gain=1.0, lr_multiplier=0.01, dtype=self.dtype,
                                     name=f'dense_{i}')(x))
    return x.astype(jnp.float32)


class SynthesisLayer(nn.Module):
  """Modulated conv3x3 (upsampling with `up` 2), noise, bias, activation."""
  features: int
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'
  up: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    x = style.ModulatedConv(self.features, 3, up=self.up, dtype=self.dtype,
                            implementation=self.conv_implementation, name='conv')(x, w)
    x = style.NoiseInput(name='noise')(x)
    return _act(x + self.param('bias', nn.initializers.zeros, (self.features,)).astype(x.dtype))


class SynthesisNetwork(nn.Module):
  """ws [B, num_ws, w_dim] -> images [B, S, S, C]."""
  data_shape: tuple[int, int, int]
  width: int = 512
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  def _to_rgb(self, x: jax.Array, w: jax.Array) -> jax.Array:
    side, channels = x.shape[1], self.data_shape[-1]
    rgb = style.ModulatedConv(channels, 1, demodulate=False, dtype=self.dtype,
                              implementation=self.conv_implementation, name=f'to_rgb_{side}')
    bias = self.param(f'to_rgb_{side}_bias', nn.initializers.zeros, (channels,))
    return (rgb(x, w) + bias).astype(jnp.float32)

  @nn.compact
  def __call__(self, ws: jax.Array) -> jax.Array:
    features = lambda side: karras.features_at(self.width, side)
    layer = lambda side, name, up=1: SynthesisLayer(features(side), self.dtype,
                                                    self.conv_implementation, up, name=name)
    const = self.param('const', nn.initializers.normal(1.0), (4, 4, features(4)))
    x = jnp.broadcast_to(const, (ws.shape[0],) + const.shape)
    x = layer(4, 'conv_4')(x, ws[:, 0])
    images = self._to_rgb(x, ws[:, 1])
    side, i = 4, 1
    while side < self.data_shape[0]:
      side *= 2
      x = layer(side, f'conv_{side}_0', up=2)(x, ws[:, i])
      x = layer(side, f'conv_{side}_1')(x, ws[:, i + 1])
      images = resample.upsample_2x(images) + self._to_rgb(x, ws[:, i + 2])
      i += 2
    return images


class StyleGAN2Generator(nn.Module):
  """z [B, latent] -> images [B, S, S, C] through w: `map`, then `synthesize`.

  Training draws a second latent for a share `style_mixing` of batches and feeds its w to
  the layers from a random one on (style-mixing regularisation: neighbouring layers' styles
  cannot rely on each other); this needs the 'mixing' random stream, and the noise inputs
  the 'noise' one. `truncation_psi` < 1 pulls w towards its running average (the
  truncation trick in W): psi 0 gives the image of the average w.
  """
  data_shape: tuple[int, int, int]
  width: int = 512
  mapping_layers: int = 8
  style_mixing: float = 0.9
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  @property
  def num_ws(self) -> int:
    return num_ws(self.data_shape[0])

  def setup(self):
    w_dim = karras.features_at(self.width, 4)
    self.mapping = MappingNetwork(w_dim, self.mapping_layers, self.dtype)
    self.synthesis = SynthesisNetwork(self.data_shape, self.width, self.dtype,
                                      self.conv_implementation)
    self.w_avg = self.variable('batch_stats', 'w_avg', jnp.zeros, (w_dim,), jnp.float32)
    # The path-length regulariser's running mean (train_step), kept with G's statistics.
    self.path_length_mean = self.variable('batch_stats', 'path_length_mean', jnp.zeros, (),
                                          jnp.float32)

  def map(self, z: jax.Array, train: bool = False,
          truncation_psi: float | jax.Array = 1.0) -> jax.Array:
    """z [B, latent] -> ws [B, num_ws, w_dim]."""
    w = self.mapping(z)
    if train and self.is_mutable_collection('batch_stats') and not self.is_initializing():
      self.w_avg.value = W_AVG_BETA * self.w_avg.value + (1 - W_AVG_BETA) * jnp.mean(w, 0)
    ws = jnp.repeat(w[:, None], self.num_ws, axis=1)
    if train and self.style_mixing > 0:
      mix_key, cutoff_key, second_key = jax.random.split(self.make_rng('mixing'), 3)
      cutoff = jax.random.randint(cutoff_key, (), 1, self.num_ws)
      cutoff = jnp.where(jax.random.uniform(mix_key) < self.style_mixing, cutoff, self.num_ws)
      second = self.mapping(jax.random.normal(second_key, z.shape, z.dtype))
      ws = jnp.where(jnp.arange(self.num_ws)[None, :, None] < cutoff, ws, second[:, None])
    # (1 - psi) * w_avg + psi * w: exactly w at psi 1, exactly w_avg at 0; psi may be traced.
    return (1 - truncation_psi) * self.w_avg.value + truncation_psi * ws

  def synthesize(self, ws: jax.Array) -> jax.Array:
    return self.synthesis(ws)

  def __call__(self, z: jax.Array, labels: jax.Array | None = None, train: bool = True,
               truncation_psi: float | jax.Array = 1.0) -> jax.Array:
    del labels  # unconditional
    return self.synthesize(self.map(z, train, truncation_psi))


class StyleGAN2Discriminator(nn.Module):
  """images [B, S, S, C] -> logits [B]: fromRGB, residual blocks down to 4x4, then the
  minibatch stddev, a conv3x3 and two dense layers."""
  data_shape: tuple[int, int, int]
  width: int = 512
  mbstd_group_size: int = 4
  dtype: Any = None
  conv_implementation: layers.Implementation = 'auto'

  def _conv(self, features: int, size: int, name: str, **kwargs) -> karras.EqualizedConv:
    return karras.EqualizedConv(features, size, gain=1.0, dtype=self.dtype,
                                implementation=self.conv_implementation, name=name, **kwargs)

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    del labels, train
    features = lambda side: karras.features_at(self.width, side)
    side = images.shape[1]
    x = _act(self._conv(features(side), 1, 'from_rgb')(images))
    while side > 4:
      # A residual block: both branches scaled by sqrt(1/2) keep the sum's variance.
      skip = self._conv(features(side // 2), 1, f'skip_{side}', use_bias=False, down=2)(x)
      x = _act(self._conv(features(side), 3, f'conv_{side}_0')(x))
      x = _act(self._conv(features(side // 2), 3, f'conv_{side}_1', down=2)(x))
      x = (skip + x) * math.sqrt(0.5)
      side //= 2
    x = karras.minibatch_stddev(x, self.mbstd_group_size)
    x = _act(self._conv(features(4), 3, 'conv_4')(x))
    x = _act(karras.EqualizedDense(features(4), gain=1.0, dtype=self.dtype, name='dense_4')(
        x.reshape(x.shape[0], -1)))
    logits = karras.EqualizedDense(1, gain=1.0, dtype=self.dtype, name='logit')(x)
    return logits[:, 0].astype(jnp.float32)


def build(config: ml_collections.ConfigDict, data_shape: tuple[int, int, int],
          num_classes: int) -> tuple[nn.Module, nn.Module]:
  """The StyleGAN2 pair of config.model for images of `data_shape` (unconditional); w has
  as many dimensions as G's 4x4 features."""
  del num_classes
  model = config.model
  dtype = jnp.dtype(model.compute_dtype)
  return (StyleGAN2Generator(data_shape, model.width, model.mapping_layers, model.style_mixing,
                             dtype, model.conv_implementation),
          StyleGAN2Discriminator(data_shape, model.width, model.mbstd_group_size, dtype,
                                 model.conv_implementation))

"""The ResNet families' conditioning and attention layers: spectral normalisation,
conditional batch norm, self-attention and the projection discriminator's head."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.layers.convolutions import Conv, Implementation


def maybe_spectral_norm(layer: nn.Module, spectral_norm: bool, x: jax.Array,
                        train: bool) -> jax.Array:
  """Applies `layer`, spectrally normalised if asked (Miyato et al., 2018).

  The power iteration's vectors live in 'batch_stats' and advance only when `train`.
  """
  if spectral_norm:
    return nn.SpectralNorm(layer)(x, update_stats=train)
  return layer(x)


class ConditionalBatchNorm(nn.Module):
  """Batch norm whose scale and shift are chosen by a class or computed from a vector.

  It normalises as nn.BatchNorm (batch statistics when training, running averages
  otherwise) and then scales and shifts each example by:
  - its class's row of learned [num_classes, C] tables, when `num_classes` > 0:
    conditional batch norm (de Vries et al., 2017), SNGAN's class-conditional generator
    (Miyato & Koyama, 2018);
  - 1 + condition @ W_gain and condition @ W_bias, when a `condition` [B, D] is given:
    BigGAN's ccbn (Brock et al., 2019), fed its shared class embedding and a latent chunk;
  - one learned scale and shift otherwise: exactly nn.BatchNorm.

  Attributes:
    num_classes: rows of the per-class tables; 0 for none.
    spectral_norm: spectrally normalise W_gain and W_bias (BigGAN's generator).
    momentum: of the running averages.
    epsilon: added to the variance.
    axis_name: the device axis to take batch statistics over (None: this device's batch).
    kernel_init: initializer of W_gain and W_bias.
    dtype: the computation dtype; None infers it from inputs and parameters.
  """
  num_classes: int = 0
  spectral_norm: bool = False
  momentum: float = 0.9
  epsilon: float = 1e-5
  axis_name: str | None = None
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               condition: jax.Array | None = None, train: bool = True) -> jax.Array:
    features = x.shape[-1]
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=self.epsilon, use_scale=False, use_bias=False, dtype=self.dtype,
                     axis_name=self.axis_name if train else None)(x)
    if condition is not None:

      def linear(name: str) -> jax.Array:
        dense = nn.Dense(features, use_bias=False, kernel_init=self.kernel_init,
                         dtype=self.dtype, name=name)
        return maybe_spectral_norm(dense, self.spectral_norm, condition, train)

      scale, shift = 1 + linear('gain'), linear('bias')
    elif self.num_classes:
      if labels is None:
        raise ValueError(f'a batch norm conditioned on {self.num_classes} classes needs labels')
      scale = self.param('scale', nn.initializers.ones, (self.num_classes, features))[labels]
      shift = self.param('bias', nn.initializers.zeros, (self.num_classes, features))[labels]
    else:
      scale = self.param('scale', nn.initializers.ones, (features,))
      shift = self.param('bias', nn.initializers.zeros, (features,))
    if scale.ndim == 2:  # one row per example: broadcast over the spatial axes
      scale, shift = (v.reshape((v.shape[0],) + (1,) * (x.ndim - 2) + (features,))
                      for v in (scale, shift))
    x, scale, shift = nn.dtypes.promote_dtype(x, scale, shift, dtype=self.dtype)
    return x * scale + shift


class SelfAttention(nn.Module):
  """Self-attention over the positions of a feature map (SAGAN, Zhang et al., 2019).

  As BigGAN's (Brock et al., 2019; BigGAN-PyTorch's layers.Attention): bias-free 1x1
  convolutions theta, phi, g to C/8, C/8 and C/2 channels, phi and g max-pooled 2x2 (4x
  fewer keys, the same receptive field), attention weights softmax_k(theta_q . phi_k),
  their average of g convolved back to C channels (o), and y = x + gamma * o. gamma is
  learned from 0, so the layer starts as the identity and the network adds non-local
  evidence as it learns to use it.

  Attributes:
    spectral_norm: spectrally normalise the four convolutions.
    kernel_init: initializer of the convolutions.
    dtype: the computation dtype; the softmax is always float32.
    conv_implementation: the 1x1 convolutions' (layers.Conv's).
  """
  spectral_norm: bool = False
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  dtype: Any = None
  conv_implementation: Implementation = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    batch, height, width, channels = x.shape

    def conv(features: int, name: str, inputs: jax.Array) -> jax.Array:
      layer = Conv(features, 1, use_bias=False, kernel_init=self.kernel_init, dtype=self.dtype,
                   implementation=self.conv_implementation, name=name)
      return maybe_spectral_norm(layer, self.spectral_norm, inputs, train)

    def pool(inputs: jax.Array) -> jax.Array:
      return nn.max_pool(inputs, (2, 2), strides=(2, 2))

    queries = conv(channels // 8, 'theta', x).reshape(batch, height * width, -1)
    keys = pool(conv(channels // 8, 'phi', x)).reshape(batch, height * width // 4, -1)
    values = pool(conv(channels // 2, 'g', x)).reshape(batch, height * width // 4, -1)
    logits = jnp.einsum('bqc,bkc->bqk', queries, keys)
    weights = nn.softmax(logits.astype(jnp.float32), axis=-1).astype(values.dtype)
    attended = jnp.einsum('bqk,bkc->bqc', weights, values).reshape(batch, height, width, -1)
    gamma = self.param('gamma', nn.initializers.zeros, ())
    return x + gamma * conv(channels, 'o', attended)


class ProjectionHead(nn.Module):
  """The discriminator's logit from pooled features h [B, C], with the class projected in.

  logit = linear(h) + <embed(y), h> (Miyato & Koyama, 2018): the class enters as an inner
  product with the features instead of being concatenated to the input, which their
  analysis derives from a log-linear model of p(y | x). Unconditional (`num_classes` 0):
  linear(h) alone.

  Attributes:
    num_classes: rows of the class embedding; 0 for an unconditional head.
    spectral_norm: spectrally normalise the linear map and the embedding (as SNGAN's and
      BigGAN's discriminators).
    kernel_init: initializer of the linear map and the embedding.
    dtype: the computation dtype; the logits are float32.
  """
  num_classes: int = 0
  spectral_norm: bool = False
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  dtype: Any = None

  @nn.compact
  def __call__(self, h: jax.Array, labels: jax.Array | None = None,
               train: bool = True) -> jax.Array:
    linear = nn.Dense(1, kernel_init=self.kernel_init, dtype=self.dtype, name='linear')
    logits = maybe_spectral_norm(linear, self.spectral_norm, h, train)[:, 0]
    if self.num_classes:
      if labels is None:
        raise ValueError(f'a projection head over {self.num_classes} classes needs labels')
      embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=self.kernel_init,
                       dtype=self.dtype, name='embed')
      logits += jnp.sum(maybe_spectral_norm(embed, self.spectral_norm, labels, train) * h, -1)
    return logits.astype(jnp.float32)

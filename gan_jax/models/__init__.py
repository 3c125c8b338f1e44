"""Generators and discriminators as Flax linen modules, one module per family.

Everything downstream calls `generator.apply(variables, z, labels, train=...)` and
`discriminator.apply(variables, x, labels, train=...)`; `labels` are int class indices
[B] for class-conditional models and ignored (None is fine) by unconditional ones.
Discriminators return logits [B]; the loss applies the sigmoid where it has one.
`train=True` is the network's own training pass: batch norm uses batch statistics and
spectral norm advances its power iteration (both kept in the 'batch_stats' collection).
`dtype` is the computation dtype (bfloat16 for mixed precision); parameters stay
float32, and outputs are float32 so losses and images are computed at full precision.
Growing models (growth.py) take `stage` and `alpha` keywords as well.
"""
from typing import Callable

import flax.linen as nn
import jax
import ml_collections

from gan_jax import data
from gan_jax.errors import UserError, unknown_name_error
from gan_jax.models import biggan, dcgan, mlp, progan, resnet, stylegan2

LATENT_PRIORS = ('gaussian', 'uniform')

# name -> build(config, data_shape, num_classes) -> (generator, discriminator)
MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    'mlp': mlp.build,
    'dcgan': dcgan.build,
    'resnet': resnet.build,
    'biggan': biggan.build,
    'progan': progan.build,
    'stylegan2': stylegan2.build,
}
# Families that make square images.
IMAGE_MODELS = ('dcgan', 'resnet', 'biggan', 'progan', 'stylegan2')
CONDITIONAL_MODELS: tuple[str, ...] = ('resnet', 'biggan')  # families that take class labels
# Families whose generator EMA copies G's batch statistics instead of averaging them:
# StyleGAN2's reference copies its buffers (w_avg), BigGAN's averages its batch norm's.
EMA_COPIES_BATCH_STATS = ('stylegan2',)


def sample_latents(key: jax.Array, shape: tuple[int, ...], prior: str,
                   truncation: float = 0.0) -> jax.Array:
  """Draws latents from the prior: 'gaussian' N(0, I) or 'uniform' U[-1, 1].

  `truncation` T > 0 is BigGAN's truncation trick (Brock et al., 2019): Gaussian latents
  are redrawn until inside [-T, T], i.e. drawn from the normal truncated there; it trades
  variety for fidelity at sampling time. Uniform latents are left as they are.
  """
  if truncation < 0:
    raise UserError(f'truncation must be > 0 (or 0 for none), got {truncation}.')
  if prior == 'gaussian' and truncation:
    return jax.random.truncated_normal(key, -truncation, truncation, shape)
  if prior == 'gaussian':
    return jax.random.normal(key, shape)
  if prior == 'uniform':
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  raise unknown_name_error('latent prior', prior, LATENT_PRIORS)


def num_classes(config: ml_collections.ConfigDict) -> int:
  """The classes a conditional model of `config` is conditioned on; 0 if unconditional."""
  return data.info(config).num_classes if config.model.conditional else 0


def check_data_shape(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> None:
  """Raises UserError if config.model cannot produce examples of `data_shape`."""
  name = config.model.name
  if config.model.conditional and name not in CONDITIONAL_MODELS:
    raise UserError(f'model {name} is unconditional; --config.model.conditional=True needs one '
                    f'of {", ".join(CONDITIONAL_MODELS) or "(none yet)"}.')
  if name not in IMAGE_MODELS:
    return
  if len(data_shape) != 3:
    raise UserError(f'model {name} makes images, but dataset {config.dataset!r} holds points of '
                    f'shape {data_shape}; use --config.model.name=mlp.')
  height, width, _ = data_shape
  if name == 'dcgan' and (height != width or dcgan.dcgan_base_size(height) is None):
    raise UserError(f'model dcgan cannot make {height}x{width} images: it needs square images '
                    'of side 4 * 2**k or 7 * 2**k (28, 32, 64, 128, ...).')
  if name in ('resnet', 'biggan'):
    resnet.check_layout(name, config.model, data_shape)
  if name in ('progan', 'stylegan2') and (height != width or height < 8 or height & (height - 1)):
    raise UserError(f'model {name} cannot make {height}x{width} images: it needs square images '
                    'of side 4 * 2**k (8, 16, 32, 64, ...). For 28x28 Fashion-MNIST, resize '
                    'them: --config.data.image_size=32.')


def build(config: ml_collections.ConfigDict,
          data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) for config.model and examples of `data_shape`."""
  if config.model.name not in MODELS:
    raise unknown_name_error('model', config.model.name, MODELS)
  check_data_shape(config, data_shape)
  return MODELS[config.model.name](config, tuple(data_shape), num_classes(config))

"""Shared config defaults, presets and validation.

Every experiment in experiments/ starts from `default()`, states what differs and
ends with `apply_preset`. `validate` runs before anything compiles, so a bad
config ends in one `UserError` saying what to change.
"""
from typing import Any, Mapping

import ml_collections

from gan_jax.errors import UserError


def default() -> ml_collections.ConfigDict:
  """The fields every experiment has; experiments override a few."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # One of input_pipeline.DATASETS: fashion_mnist, mnist (28x28x1 images), ring8, grid25 (2-D points).
  config.dataset = 'fashion_mnist'
  config.data = ml_collections.ConfigDict(dict(
      manual_dir='',  # a folder holding the four IDX .gz files; '' searches the usual places
      data_dir='',  # where tfds keeps the prepared array_record files; '' is ~/tensorflow_datasets
      num_threads=2,  # grain reader threads per host
      prefetch=8,  # batches grain prepares ahead
  ))
  config.model = ml_collections.ConfigDict(dict(
      name='dcgan',  # one of models.MODELS
      latent_dim=100,
      latent_prior='gaussian',  # 'gaussian' N(0, I) or 'uniform' U[-1, 1]
      width=64,  # DCGAN: channels of the widest-resolution layer; MLP: hidden units
      mlp_layers=3,  # MLP hidden layers in each network
      g_batch_norm=True,  # batch norm in the generator
      sync_batch_norm=False,  # batch statistics over all devices instead of per device
      spectral_norm=False,  # spectral normalization of every discriminator layer
  ))
  config.loss = 'non_saturating'  # one of losses.LOSSES
  config.gradient_penalty = 0.0  # lambda of the WGAN-GP penalty; 0 turns it off
  config.n_critic = 1  # discriminator updates per generator update
  config.batch_size = 64  # global: split over every device of every host
  config.num_steps = 10_000  # generator updates
  config.g_optimizer = ml_collections.ConfigDict(dict(learning_rate=2e-4, b1=0.5, b2=0.999))
  config.d_optimizer = ml_collections.ConfigDict(dict(learning_rate=2e-4, b1=0.5, b2=0.999))
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.num_grid_samples = 64  # the fixed latents of the sample grids
  return config


def toy(dataset: str) -> ml_collections.ConfigDict:
  """MLPs on a 2-D Gaussian mixture (input_pipeline's 'ring8' or 'grid25')."""
  config = default()
  config.dataset = dataset
  config.model.name = 'mlp'
  config.model.width = 128
  config.model.mlp_layers = 2
  config.model.latent_dim = 2
  config.loss = 'non_saturating'
  config.batch_size = 512
  config.num_steps = 4000
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.num_grid_samples = 1024  # points of the scatter plots
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1 = 1e-3, 0.5
  return config


def _smoke_preset(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A tiny, 2-step version of any experiment, for tests."""
  return {'num_steps': 2, 'batch_size': 8, 'model.width': 8, 'model.latent_dim': 8,
          'log_every': 1, 'sample_every': 2, 'checkpoint_every': 2, 'num_grid_samples': 4}


def apply_preset(config: ml_collections.ConfigDict, arg: str | None,
                 **presets: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """Applies the preset named by the config file's argument (`experiments/x.py:cpu`).

  Args:
    config: the experiment's config.
    arg: None for the full run, 'smoke' for a 2-step test run, or a name in `presets`.
    **presets: the experiment's own presets, each a dict of dotted field -> value.
  Returns:
    The config with the preset's fields set.
  """
  if arg is None:
    return config
  presets = {'smoke': _smoke_preset(config), **presets}
  if arg not in presets:
    raise UserError(f'Unknown config argument {arg!r}; valid ones: {", ".join(sorted(presets))} '
                    '(or none for the full run).')
  for dotted, value in presets[arg].items():
    *parents, field = dotted.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[field] = value
  return config


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Checks `config` before anything compiles; raises UserError saying what to fix."""
  # Imported here: the registries live beside what they name, and they import this module's error.
  from gan_jax import input_pipeline, losses, models  # pylint: disable=g-import-not-at-top

  def check_choice(field, value, choices):
    if value not in choices:
      raise UserError(f'config.{field}={value!r} is not known; valid values: '
                      f'{", ".join(sorted(choices))}.')

  def check_positive(field, value):
    if not value > 0:
      raise UserError(f'config.{field} must be positive, got {value!r}.')

  check_choice('dataset', config.dataset, input_pipeline.DATASETS)
  check_choice('model.name', config.model.name, models.MODELS)
  check_choice('model.latent_prior', config.model.latent_prior, models.LATENT_PRIORS)
  check_choice('loss', config.loss, losses.LOSSES)
  for field in ('batch_size', 'num_steps', 'n_critic', 'model.latent_dim', 'model.width',
                'log_every', 'sample_every', 'checkpoint_every', 'keep_checkpoints',
                'num_grid_samples', 'g_optimizer.learning_rate', 'd_optimizer.learning_rate'):
    node = config
    for part in field.split('.'):
      node = node[part]
    check_positive(field, node)
  if config.gradient_penalty < 0:
    raise UserError(f'config.gradient_penalty must be >= 0, got {config.gradient_penalty}.')
  if config.batch_size % num_devices:
    raise UserError(f'config.batch_size={config.batch_size} does not divide over {num_devices} '
                    f'devices; use a multiple of {num_devices}.')
  models.check_data_shape(config, input_pipeline.DATASETS[config.dataset].shape)

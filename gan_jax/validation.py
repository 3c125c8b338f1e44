"""Config validation: `validate` runs before anything compiles, so that a bad config ends in
one `UserError` saying what to change.

Every field of `configs.default()` must be there with a value of its type and range, and no
other field; names must be known, batches must split over the devices, and fields that
contradict each other or the data set are named.
"""
import math
import reprlib
from typing import Any

import ml_collections

from gan_jax import (augment, configs, data, growth, input_pipeline, layers, losses, metrics,
                     models, state)
from gan_jax.data.transform import CROPS
from gan_jax.errors import UserError, unknown_field_error, unknown_name_error


def _describe(value: Any) -> str:
  """A value and its type, shortened: `'64' (str)`."""
  return f'{reprlib.repr(value)} ({type(value).__name__})'


# What a field must hold, by the type of its value in `configs.default()`: (description, check).
_TYPES = {
    int: ('an integer', lambda v: isinstance(v, int) and not isinstance(v, bool)),  # True is an int
    float: ('a finite number', lambda v: not isinstance(v, bool) and (
        isinstance(v, int) or isinstance(v, float) and math.isfinite(v))),
    str: ('a string', lambda v: isinstance(v, str)),
    bool: ('True or False', lambda v: isinstance(v, bool)),
    tuple: ('a list of names or sizes', lambda v: isinstance(v, (list, tuple))
            and all(isinstance(item, (str, int)) for item in v)),
}

# (fields, check, what the check requires), for values already of the right type.
_BOUNDS = (
    (('batch_size', 'num_steps', 'n_critic', 'r1_every', 'pl_every', 'log_every', 'sample_every',
      'checkpoint_every', 'keep_checkpoints', 'num_grid_samples', 'model.latent_dim', 'model.width',
      'g_optimizer.learning_rate', 'd_optimizer.learning_rate'), lambda v: v > 0, 'positive'),
    (('gradient_penalty', 'r1_gamma', 'dragan_penalty', 'drift_penalty', 'pl_weight',
      'orthogonal_reg', 'model.mapping_layers',
      'data.num_examples', 'growth.fade_images', 'growth.stable_images',
      'model.mlp_layers', 'data.num_threads', 'data.prefetch', 'data.workers',
      'data.cache_in_memory_mb',
      'data.image_size', 'eval_every', 'eval_reference_count', 'g_ema_start', 'g_ema_kimg',
      'g_ema_rampup',
      'train_minutes',
      'checkpoint_every_minutes', 'max_rollbacks'), lambda v: v >= 0, '>= 0'),
    (('g_ema_decay',), lambda v: 0 <= v < 1, 'in [0, 1)'),
    (('data.channels',), lambda v: v in (0, 1, 3), '0 (as the data set), 1 or 3'),
    (('data.num_classes',), lambda v: v >= -1, '>= -1 (-1: from the data set)'),
    (('model.style_mixing',), lambda v: 0 <= v <= 1, 'in [0, 1]'),
    (('rollback_lr_factor',), lambda v: 0 < v <= 1, 'in (0, 1]'),
    # grain's shuffle takes 32-bit seeds.
    (('seed',), lambda v: 0 <= v < 2**32, 'in [0, 2**32)'),
    # Adam's bias correction divides by 1 - b**t.
    (('g_optimizer.b1', 'g_optimizer.b2', 'd_optimizer.b1', 'd_optimizer.b2'),
     lambda v: 0 <= v < 1, 'in [0, 1)'),
    (('model.width_growth', 'model.mbstd_group_size'), lambda v: v > 0, 'positive'),
    (('model.d_width', 'model.d_blocks_without_downsampling', 'model.attention_resolution'),
     lambda v: v >= 0, '>= 0'),
)


def _leaves(group: Any, reference: ml_collections.ConfigDict,
            path: tuple[str, ...] = ()) -> dict[str, Any]:
  """Returns {dotted name: value} of `group`'s leaf fields, checked against `reference`'s.

  Raises UserError for an unknown or missing field, or a value of the wrong type.
  """
  where = '.'.join(('config',) + path)
  if not isinstance(group, ml_collections.ConfigDict):
    raise UserError(f'{where} must be a group of fields ({", ".join(reference.keys())}), '
                    f'got {_describe(group)}.')
  for key in group.keys():
    if key not in reference:
      raise unknown_field_error('.'.join(path + (key,)), configs.default())
  leaves = {}
  for key, default_value in reference.items():
    if key not in group:
      raise UserError(f'{where}.{key} is missing; start the config from configs.default().')
    value = group[key]
    if isinstance(default_value, ml_collections.ConfigDict):
      leaves.update(_leaves(value, default_value, path + (key,)))
      continue
    kind, is_kind = _TYPES[type(default_value)]
    if not is_kind(value):
      raise UserError(f'{where}.{key} must be {kind}, got {_describe(value)}.')
    leaves['.'.join(path + (key,))] = value
  return leaves


def _check_batch(config: ml_collections.ConfigDict, name: str, size: int,
                 num_devices: int) -> None:
  """A global batch (config.`name`) must split over the devices into minibatch-stddev groups."""
  if size % num_devices:
    raise UserError(f'config.{name}={size} does not divide over {num_devices} devices; use a '
                    f'multiple of {num_devices}.')
  per_device = size // num_devices
  group = min(config.model.mbstd_group_size, per_device)
  if config.model.name in ('progan', 'stylegan2') and per_device % group:
    raise UserError(f'config.model.mbstd_group_size={config.model.mbstd_group_size} must divide '
                    f'the batch on each device ({per_device}, config.{name}): D groups real and '
                    'fake examples apart only then. Pick a divisor of it.')


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Checks `config` before anything compiles; raises UserError saying what to fix.

  Every field of `configs.default()` must be there with a value of its type and range, and no
  other field; names must be known, and the batch must split over `num_devices`.
  """
  fields = _leaves(config, configs.default())
  for names, holds, requirement in _BOUNDS:
    for name in names:
      if not holds(fields[name]):
        raise UserError(f'config.{name} must be {requirement}, got {fields[name]!r}.')
  for name, valid in (('model.name', models.MODELS),
                      ('model.latent_prior', models.LATENT_PRIORS), ('loss', losses.LOSSES),
                      ('model.conv_implementation', layers.IMPLEMENTATIONS),
                      ('model.compute_dtype', ('float32', 'bfloat16')),
                      ('on_divergence', ('stop', 'rollback')), ('data.crop', CROPS),
                      ('lr_schedule', state.LR_SCHEDULES)):
    if fields[name] not in valid:
      raise unknown_name_error(f'config.{name}', fields[name], valid)
  if config.eval_num_samples < metrics.MIN_SAMPLES:
    raise UserError(f'config.eval_num_samples must be at least {metrics.MIN_SAMPLES}, got '
                    f'{config.eval_num_samples}.')
  if 0 < config.eval_reference_count < metrics.MIN_SAMPLES:
    raise UserError(f'config.eval_reference_count must be 0 (every training image) or at least '
                    f'{metrics.MIN_SAMPLES}, got {config.eval_reference_count}.')
  if config.g_ema_kimg and config.g_ema_decay:
    raise UserError(f'config.g_ema_kimg={config.g_ema_kimg} and config.g_ema_decay='
                    f'{config.g_ema_decay} both set the EMA\'s decay: set the other to 0.')
  if config.g_ema_rampup and not config.g_ema_kimg:
    raise UserError('config.g_ema_rampup ramps up a half-life in images: set config.g_ema_kimg '
                    '(e.g. 10) and config.g_ema_decay=0, or g_ema_rampup=0.')
  if config.keep_best_checkpoint and not config.eval_every:
    raise UserError('config.keep_best_checkpoint ranks checkpoints by their evaluation: set '
                    'config.eval_every too (e.g. --config.eval_every=1000).')
  for penalty in ('gradient_penalty', 'r1_gamma', 'dragan_penalty'):
    if config.model.d_batch_norm and config[penalty]:
      raise UserError(f'config.{penalty} needs a discriminator without batch norm (the '
                      'penalty is per example, batch norm mixes examples): set '
                      f'--config.model.d_batch_norm=False or --config.{penalty}=0.')
  augment.parse_policy(config.diffaugment)
  if config.diffaugment and data.is_toy(config.dataset):
    raise UserError(f'config.diffaugment augments images, but dataset {config.dataset!r} '
                    "holds points; set it to ''.")
  _check_batch(config, 'batch_size', config.batch_size, num_devices)
  for field in ('image_size', 'channels', 'random_flip', 'path', 'folder_labels'):
    if config.data[field] and data.is_toy(config.dataset):
      raise UserError(f'config.data.{field} is about images, but dataset {config.dataset!r} '
                      f'holds points; leave it at {configs.default().data[field]!r}.')
  for field in ('path', 'folder_labels'):
    if config.data[field] and config.dataset != data.IMAGE_FOLDER:
      raise UserError(f'config.data.{field} is for --config.dataset={data.IMAGE_FOLDER}, not '
                      f'{config.dataset!r}.')
  models.check_data_shape(config, input_pipeline.data_shape(config))
  growth.check_batch_sizes(config, input_pipeline.data_shape(config)[0])
  for stage, size in enumerate(config.growth.batch_sizes):
    _check_batch(config, f'growth.batch_sizes[{stage}]', size, num_devices)

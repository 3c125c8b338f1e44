r"""Writes samples of a trained GAN to a .npy file.

python -m gan_jax.sample --workdir runs/ns --num_samples 10000   # writes runs/ns/samples.npy
python -m gan_jax.sample --workdir runs/cond --label 3   # a conditional model's class 3 only

Images come out NHWC float32 in [0, 1]; 2-D toy data as [N, 2] points in data
coordinates. The latents come from `--seed`, so the same seed gives the same samples.
A StyleGAN2's noise inputs are drawn per sample from the seed and the sample's index.
A conditional model's samples spread evenly over its classes, in blocks (the first
N / K of class 0, then class 1, ...), unless `--label` asks for one class.
`--truncation T` draws Gaussian latents inside [-T, T] only (BigGAN's truncation trick:
fidelity for variety); `--truncation_psi P` pulls a StyleGAN2's w towards its average,
w_avg + P (w - w_avg) (the truncation trick in W).
"""
import os
from typing import Any

from absl import app
from absl import flags
import flax.linen as nn
import jax
import ml_collections
import numpy as np

from gan_jax import checkpoints, cli, models, paths
from gan_jax.errors import UserError
from gan_jax.state import GANState, generate

# One compiled function for every state: the module is a static (hashable) argument and the
# state a traced one, so the parameters are not baked into the program as constants.
_generate = jax.jit(generate, static_argnums=(0, 4))


def spread_labels(num_classes: int, count: int) -> np.ndarray | None:
  """`count` labels spread evenly over `num_classes` classes in sorted blocks (None if 0).

  Class k takes rows [k * count / K, (k + 1) * count / K): a grid of K rows has one class
  per row, and 10,000 samples of 10 classes have 1,000 each.
  """
  if not num_classes:
    return None
  return (np.arange(count) * num_classes // count).astype(np.int32)


def grid_columns(num_classes: int, count: int) -> int | None:
  """Columns of a sample grid: one class per row when `count` splits evenly over the classes."""
  return count // num_classes if num_classes and count % num_classes == 0 else None


def noise_key(seed: int) -> jax.Array:
  """The key whose fold with a sample's index draws its noise inputs (StyleGAN2's), for
  samples drawn with `seed`; their latents come from PRNGKey(seed) itself."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), 1)


def generate_samples(generator: nn.Module, state: GANState, latents: jax.Array,
                     labels: np.ndarray | None = None, batch_size: int = 500,
                     ema: bool = True, noise_seed: int = 0, fixed_noise: bool = False,
                     **options: Any) -> np.ndarray:
  """G(latents, labels), `batch_size` at a time: images float32 in [0, 1], points as they are.

  `labels`: classes for a conditional generator, None for others. `ema`: the generator's EMA
  when the state keeps one (`state.generate`); False, the raw weights. Sample i's noise
  inputs (StyleGAN2's) are drawn from `noise_key(noise_seed)` and i, whatever the batch
  size; with `fixed_noise` every sample takes sample 0's (an interpolation's frames).
  `options`: the generator's sampling keywords (StyleGAN2's truncation_psi).
  """
  key = noise_key(noise_seed)
  indices = np.zeros(len(latents), np.int32) if fixed_noise else np.arange(len(latents))
  samples = np.concatenate([
      np.asarray(_generate(generator, state, latents[i:i + batch_size],
                           None if labels is None else labels[i:i + batch_size], ema,
                           noise_key=key, noise_indices=indices[i:i + batch_size], **options))
      for i in range(0, len(latents), batch_size)]).astype(np.float32)
  if samples.ndim == 4:  # tanh images in [-1, 1]
    samples = np.clip((samples + 1.0) / 2.0, 0.0, 1.0)
  return samples


def class_index(config: ml_collections.ConfigDict, label: int | str) -> int:
  """The class `label` names for a conditional model of `config`: its index, its name, or
  the index as a string (as the command line gives it). Raises UserError for any other."""
  num_classes, names = models.num_classes(config), tuple(config.data.class_names)
  if not num_classes:
    raise UserError('--label picks a class of a conditional model; this one is unconditional.')
  if isinstance(label, str) and label in names:
    return names.index(label)
  if isinstance(label, str) and label.lstrip('-').isdigit():
    label = int(label)
  if not isinstance(label, int) or not 0 <= label < num_classes:
    named = f' or a name: {", ".join(names)}' if names else ''
    raise UserError(f'--label must be a class of {config.dataset}, 0 to {num_classes - 1}'
                    f'{named}; got {label!r}.')
  return label


def sample_labels(config: ml_collections.ConfigDict, num_samples: int,
                  label: int | str | None = None) -> np.ndarray | None:
  """The classes to ask a conditional model of `config` for: all `label` (see
  `class_index`), or spread evenly; None for an unconditional one."""
  if label is None:
    return spread_labels(models.num_classes(config), num_samples)
  return np.full(num_samples, class_index(config, label), np.int32)


def sample(loaded: checkpoints.Loaded, num_samples: int, seed: int, batch_size: int = 500,
           ema: bool = True, label: int | str | None = None, truncation: float = 0.0,
           truncation_psi: float = 1.0) -> np.ndarray:
  """Draws `num_samples` examples from a loaded GAN: images in [0, 1], points as they are.

  A conditional model's are of the classes `sample_labels(loaded.config, num_samples, label)`;
  `ema` as in `generate_samples`; `truncation` as `models.sample_latents`; `truncation_psi`
  as StyleGAN2Generator's.
  """
  config = loaded.config
  options = {}
  if truncation_psi != 1.0:
    if config.model.name != 'stylegan2':
      raise UserError(f'--truncation_psi truncates in W, a StyleGAN2 generator\'s; this is a '
                      f'{config.model.name} generator: use --truncation.')
    options['truncation_psi'] = truncation_psi
  latents = models.sample_latents(jax.random.PRNGKey(seed), (num_samples, config.model.latent_dim),
                                  config.model.latent_prior, truncation)
  labels = sample_labels(config, num_samples, label)
  return generate_samples(loaded.generator, loaded.state, latents, labels, batch_size, ema,
                          noise_seed=seed, **options)


def describe_sampling(config: ml_collections.ConfigDict, label: int | str | None = None,
                      truncation: float = 0.0, truncation_psi: float = 1.0) -> str:
  """What `sample` applies for these arguments, as the program echoes it: e.g. 'class 3 only,
  latents truncated to [-0.5, 0.5]'. Names the classes only for a conditional model, and
  truncation_psi only for a StyleGAN2 (`sample` refuses it for others)."""
  parts = []
  num_classes = models.num_classes(config)
  if num_classes:
    if label is None:
      parts.append(f'all {num_classes} classes, evenly')
    else:
      index = class_index(config, label)
      name = f' ({config.data.class_names[index]})' if config.data.class_names else ''
      parts.append(f'class {index}{name} only')
  if config.model.latent_prior != 'gaussian':
    parts.append(f'{config.model.latent_prior} latents, untruncated (--truncation applies to '
                 'Gaussian ones)' if truncation else f'{config.model.latent_prior} latents')
  elif truncation:
    parts.append(f'latents truncated to [-{truncation:g}, {truncation:g}]')
  else:
    parts.append('untruncated latents')
  if config.model.name == 'stylegan2':
    parts.append(f'truncation_psi {truncation_psi:g}' if truncation_psi != 1.0 else
                 'truncation_psi 1 (w untruncated)')
  return ', '.join(parts)


FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines the command's flags, only when it runs as a program: train imports this module."""
  flags.DEFINE_string('workdir', None, 'A gan_jax training workdir.')
  flags.DEFINE_integer('num_samples', 10_000, 'How many samples to write.')
  flags.DEFINE_string('output', None, 'The .npy file to write; default WORKDIR/samples.npy.')
  flags.DEFINE_integer('seed', 0, 'Seed of the latents.')
  flags.DEFINE_integer('restore_step', None, 'Checkpoint step to load; default: the latest.')
  flags.DEFINE_alias('step', 'restore_step')
  flags.DEFINE_integer('batch_size', 500, 'Samples generated per call.')
  flags.DEFINE_bool('ema', True, "The generator's EMA when the run keeps one "
                    '(config.g_ema_decay or g_ema_kimg); --noema samples the raw weights.')
  flags.DEFINE_string('label', None, "A conditional model's class to sample, by index or by "
                      "name (an image folder's subfolder); default: all classes, evenly.")
  flags.DEFINE_float('truncation', 0.0, 'Draw Gaussian latents inside [-T, T] only (the '
                     'truncation trick, e.g. 0.5); 0 draws them all.')
  flags.DEFINE_float('truncation_psi', 1.0, "StyleGAN2: w_avg + psi (w - w_avg), e.g. 0.7; "
                     '1 leaves w as it is.')
  flags.mark_flag_as_required('workdir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  loaded = checkpoints.load(FLAGS.workdir, FLAGS.restore_step)
  samples = sample(loaded, FLAGS.num_samples, FLAGS.seed, FLAGS.batch_size, FLAGS.ema,
                   FLAGS.label, FLAGS.truncation, FLAGS.truncation_psi)
  output = FLAGS.output or os.path.join(FLAGS.workdir, 'samples.npy')
  paths.write_atomically(output, lambda f: np.save(f, samples))
  print(f'Wrote {samples.shape} {samples.dtype} samples from step {int(loaded.state.step)} '
        f'to {output}: ' + describe_sampling(loaded.config, FLAGS.label, FLAGS.truncation,
                                             FLAGS.truncation_psi) + '.')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)

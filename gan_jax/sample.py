r"""Writes samples of a trained GAN to a .npy file.

python -m gan_jax.sample --workdir runs/ns --num_samples 10000   # writes runs/ns/samples.npy

Images come out NHWC float32 in [0, 1]; 2-D toy data as [N, 2] points in data
coordinates. The latents come from `--seed`, so the same seed gives the same samples.
"""
import os

from absl import app
from absl import flags
import flax.linen as nn
import jax
import numpy as np

from gan_jax import checkpoints, cli, models, paths
from gan_jax.state import GANState, generate

# One compiled function for every state: the module is a static (hashable) argument and the
# state a traced one, so the parameters are not baked into the program as constants.
_generate = jax.jit(generate, static_argnums=(0, 3))


def generate_samples(generator: nn.Module, state: GANState, latents: jax.Array,
                     batch_size: int = 500, ema: bool = True) -> np.ndarray:
  """G(latents), `batch_size` at a time: images float32 in [0, 1], points as they are.

  `ema`: the generator's EMA when the state keeps one (`state.generate`); False, the raw weights.
  """
  samples = np.concatenate([np.asarray(_generate(generator, state, latents[i:i + batch_size], ema))
                            for i in range(0, len(latents), batch_size)]).astype(np.float32)
  if samples.ndim == 4:  # tanh images in [-1, 1]
    samples = np.clip((samples + 1.0) / 2.0, 0.0, 1.0)
  return samples


def sample(loaded: checkpoints.Loaded, num_samples: int, seed: int,
           batch_size: int = 500, ema: bool = True) -> np.ndarray:
  """Draws `num_samples` examples from a loaded GAN: images in [0, 1], points as they are.

  `ema` as in `generate_samples`.
  """
  config = loaded.config
  latents = models.sample_latents(jax.random.PRNGKey(seed), (num_samples, config.model.latent_dim),
                                  config.model.latent_prior)
  return generate_samples(loaded.generator, loaded.state, latents, batch_size, ema)


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
                    '(config.g_ema_decay); --noema samples the raw weights.')
  flags.mark_flag_as_required('workdir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  loaded = checkpoints.load(FLAGS.workdir, FLAGS.restore_step)
  samples = sample(loaded, FLAGS.num_samples, FLAGS.seed, FLAGS.batch_size, FLAGS.ema)
  output = FLAGS.output or os.path.join(FLAGS.workdir, 'samples.npy')
  paths.write_atomically(output, lambda f: np.save(f, samples))
  print(f'Wrote {samples.shape} {samples.dtype} samples from step {int(loaded.state.step)} '
        f'to {output}')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)

r"""Trains a GAN: `python -m gan_jax.main --config experiments/ns_gan.py --workdir runs/ns`.

Everything else lives in modules that tests and notebooks import; this file only
parses flags and calls `train.train_and_evaluate`. Rerunning the same command
resumes from the workdir's latest checkpoint, `--restore_step=N` from an older one.
"""
import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gan_jax import cli, train
from gan_jax.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Run directory: checkpoints, metrics, samples.')
flags.DEFINE_integer('restore_step', None,
                     'Resume from this checkpoint instead of the latest (e.g. when the latest is '
                     'corrupt); the later checkpoints are deleted.')
flags.DEFINE_bool('distributed', False,
                  'Join a multi-process run with jax.distributed.initialize(): Cloud TPU pods '
                  'and SLURM are detected; elsewhere give the three flags below.')
flags.DEFINE_string('coordinator_address', None, 'With --distributed: host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'With --distributed: how many processes.')
flags.DEFINE_integer('process_id', None, 'With --distributed: this process, 0..num_processes-1.')
config_flags.DEFINE_config_file('config', None, 'An experiments/*.py file, e.g. '
                                'experiments/ns_gan.py or experiments/ns_gan.py:cpu.',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def _quiet_orbax() -> None:
  """Drops orbax's INFO lines (dozens per checkpoint); its warnings and errors still show."""
  std_logging.getLogger('absl').addFilter(
      lambda record: record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  _quiet_orbax()
  if FLAGS.distributed:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info('Process %d/%d on %s', jax.process_index(), jax.process_count(), jax.devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.restore_step)
  except UserError as e:
    logging.error('%s', e)
    sys.exit(f'Error: {e}')


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)

r"""Trains a GAN: `python -m gan_jax.main --config experiments/ns_gan.py --workdir runs/ns`.

Everything else lives in modules that tests and notebooks import; this file only
parses flags and calls `train.train_and_evaluate`. Rerunning the same command
resumes from the workdir's latest checkpoint, `--restore_step=N` from an older one.
"""
import os

from absl import app
from absl import flags
from absl import logging
import jax

from gan_jax import checkpoints, cli, cluster, train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Run directory: checkpoints, metrics, samples.')
flags.DEFINE_integer('restore_step', None,
                     'Resume from this checkpoint instead of the latest (e.g. when the latest is '
                     'corrupt); the later checkpoints are deleted.')
flags.DEFINE_bool('distributed', False,
                  'Join a multi-process run with jax.distributed.initialize(): Cloud TPU pods, '
                  'SkyPilot multi-node tasks, SLURM, Open MPI and Kubernetes jobs are detected; '
                  'elsewhere give the three flags below, which also win over what is detected.')
flags.DEFINE_string('coordinator_address', None, 'With --distributed: host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'With --distributed: how many processes.')
flags.DEFINE_integer('process_id', None, 'With --distributed: this process, 0..num_processes-1.')
cli.define_config_flag('An experiments/*.py file, e.g. experiments/ns_gan.py or '
                       'experiments/ns_gan.py:cpu.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  checkpoints.check_workdir(FLAGS.workdir)
  if FLAGS.distributed:
    jax.distributed.initialize(**cluster.initialize_arguments(
        os.environ, FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
        tpu_runtime=cluster.has_tpu_runtime()))
  logging.info('Process %d/%d on %s', jax.process_index(), jax.process_count(), jax.devices())
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.restore_step)


if __name__ == '__main__':
  cli.run(main)

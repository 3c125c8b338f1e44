r"""Runs every point of a sweep as its own `gan_jax.main` run, here or on SkyPilot.

python -m launch.sweep --sweep launch/sweeps/loss_study.py:cpu --target local --parallel 2
python -m launch.sweep --sweep launch/sweeps/loss_study.py --target sky \
    --accelerator tpu-v4-32 --spot --bucket gs://my-bucket [--dry_run]

Run it from the repository's root: sweep and experiment paths are relative to it, and a
SkyPilot task syncs it. The runs live in ROOT/SWEEP/<run>/ (--root, default runs/sweeps):
for --target local that is each run's workdir; for --target sky it holds each run's task.yaml
while the workdir is gs://BUCKET/sweeps/SWEEP/<run>. Rerunning the same command skips
finished (local) or launched (sky) runs.
"""
import os
import sys

from absl import app
from absl import flags

from gan_jax import cli
from gan_jax.errors import UserError
from launch import local, skypilot, spec

FLAGS = flags.FLAGS
flags.DEFINE_string('sweep', None, 'A sweep file, launch/sweeps/NAME.py or NAME.py:ARG.')
flags.DEFINE_enum('target', 'local', ['local', 'sky'],
                  'local: processes on this machine; sky: SkyPilot managed jobs.')
flags.DEFINE_string('root', 'runs/sweeps', 'Where the sweep\'s folder goes.')
flags.DEFINE_integer('parallel', 1, 'local: how many runs train at once.')
flags.DEFINE_string('accelerator', None,
                    'sky: per node, e.g. tpu-v4-8 (one TPU VM), tpu-v4-32 (a pod slice), H100:8.')
flags.DEFINE_integer('num_nodes', 1, 'sky: GPU nodes per run (a TPU slice is one node).')
flags.DEFINE_bool('spot', False, 'sky: spot (preemptible) VMs; the managed job recovers.')
flags.DEFINE_string('bucket', None, 'sky: the gs:// bucket (and path) of the run workdirs.')
flags.DEFINE_bool('dry_run', False, 'sky: write the task YAMLs and print the sky commands only.')
flags.DEFINE_bool('relaunch', False, 'sky: launch runs that were launched before, too.')
flags.mark_flag_as_required('sweep')

_SKY_FLAGS = ('accelerator', 'num_nodes', 'spot', 'bucket', 'dry_run', 'relaunch')


def _check_flags() -> None:
  """Flags that the target ignores are a mistake: say so rather than drop them."""
  given = {name for name in _SKY_FLAGS + ('parallel',) if FLAGS[name].present}
  ignored = given - (set(_SKY_FLAGS) if FLAGS.target == 'sky' else {'parallel'})
  if ignored:
    other = 'local' if FLAGS.target == 'sky' else 'sky'
    raise UserError(f'--{", --".join(sorted(ignored))} {"is" if len(ignored) == 1 else "are"} '
                    f'only for --target {other}.')
  if FLAGS.parallel < 1:
    raise UserError(f'--parallel must be at least 1, got {FLAGS.parallel}.')
  if FLAGS.target == 'sky':
    missing = [name for name in ('accelerator', 'bucket') if not FLAGS[name].value]
    if missing:
      raise UserError(f'--target sky needs --{" and --".join(missing)}, e.g. --accelerator '
                      'tpu-v4-32 --bucket gs://my-bucket.')
    skypilot.check_target(FLAGS.bucket, FLAGS.accelerator, FLAGS.num_nodes)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  _check_flags()
  sweep = spec.load(FLAGS.sweep)
  with spec.locked(os.path.join(FLAGS.root, sweep.name)):
    configs = spec.check_runs(sweep)  # a bad run fails here, before anything starts
    if FLAGS.target == 'local':
      status = local.run_sweep(sweep, FLAGS.root, FLAGS.parallel, configs)
    else:
      jobs = skypilot.write_tasks(sweep, FLAGS.root, FLAGS.bucket, FLAGS.accelerator,
                                  FLAGS.num_nodes, FLAGS.spot)
      status = skypilot.launch_jobs(jobs, FLAGS.root, sweep, FLAGS.dry_run, FLAGS.relaunch,
                                    sys.stdout)
  sys.exit(status)


if __name__ == '__main__':
  cli.run(main)

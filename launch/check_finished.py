r"""Exits 75 when a workdir's training stopped before its end, 0 when it ended.

python -m launch.check_finished gs://bucket/sweeps/loss_study/loss=hinge,seed=0

A SkyPilot task runs it after gan_jax.main. gan_jax exits 0 when a signal stopped it, having
saved a checkpoint; on a preempted VM that signal is the preemption, and a managed job whose
command exited 0 can be marked SUCCEEDED before SkyPilot sees the VM go (skypilot issue 7117).
Exit 75 (EX_TEMPFAIL) is in the task's `recover_on_exit_codes`: SkyPilot then restarts the
task, however many restarts it has had, and gan_jax resumes from the checkpoint.
"""
import sys

from absl import app

from gan_jax import cli
from launch import spec

UNFINISHED = 75


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('Give one workdir: python -m launch.check_finished WORKDIR')
  config, metrics, _ = spec.read_workdir(argv[1])
  step = metrics[-1]['step'] if metrics else None
  if config is not None and spec.reached_end(step, config):
    return
  print(f'{argv[1]} stopped at step {step} of {config.num_steps if config else "?"}: exiting '
        f'{UNFINISHED} to have the task restarted, which resumes it.')
  sys.exit(UNFINISHED)


if __name__ == '__main__':
  cli.run(main)

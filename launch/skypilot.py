"""Runs a sweep on the cloud as SkyPilot managed jobs: one task YAML and one job per run.

Each run's task syncs this repository (`workdir: .`), installs it with the JAX build for its
accelerator, and runs the same `gan_jax.main` command as a local sweep with a bucket workdir,
gs://B/sweeps/SWEEP/<run>. `sky jobs launch` makes it a managed job: SkyPilot restarts a
preempted or failed task on a new VM, and gan_jax resumes from the workdir's checkpoint.
SkyPilot runs `run` on every host of a TPU pod slice and every node of a multi-node task;
gan_jax.main --distributed then joins them into one JAX run.
"""
import datetime
import os
import re
import shlex
import shutil
import subprocess
from typing import Any, TextIO

import yaml

from gan_jax.errors import UserError
from launch import check_finished, spec

TASK_FILE = 'task.yaml'
# Other failures (a host that died, a flaky filesystem) restart the task this many times.
MAX_RESTARTS_ON_ERRORS = 3
# TPU VM images by generation; SkyPilot's default (tpu-vm-base) is older than v4's own.
TPU_RUNTIMES = {'v2': 'tpu-ubuntu2204-base', 'v3': 'tpu-ubuntu2204-base',
                'v4': 'tpu-ubuntu2204-base', 'v5p': 'v2-alpha-tpuv5',
                'v5litepod': 'v2-alpha-tpuv5-lite', 'v6e': 'v2-alpha-tpuv6e'}
VENV = '~/gan_jax_venv'
# uv brings Python 3.11 where the image has an older one (TPU images ship 3.10).
SETUP = """\
set -e
command -v uv || curl -LsSf https://astral.sh/uv/install.sh | sh
export PATH="$HOME/.local/bin:$PATH"
uv venv --allow-existing --python 3.11 {venv}
uv pip install --python {venv}/bin/python -e '.[gcs]' {jax}
"""

# gan_jax exits 0 also when a signal (a preemption) stopped it: launch.check_finished then
# exits 75, which has SkyPilot restart the task (recover_on_exit_codes).
RUN = """\
set -e
{train}
{check}
"""


def _tpu(accelerator: str) -> tuple[str, int] | None:
  """(generation, size) of a TPU accelerator name such as tpu-v4-32; None for a GPU."""
  match = re.fullmatch(r'tpu-(v\w+?)-(\d+)', accelerator)
  return (match[1], int(match[2])) if match else None


def job_name(sweep: spec.Sweep, run: spec.Run) -> str:
  """The managed job's name: the sweep's and the run's, in the letters SkyPilot allows."""
  return re.sub(r'[^A-Za-z0-9]+', '-', f'{sweep.name}-{run.name}').strip('-')


def _multi_host(accelerator: str, num_nodes: int) -> bool:
  # A TPU slice's size counts cores (v2-v5p) or chips (v5e, v6e); above 8 it spans hosts.
  tpu = _tpu(accelerator)
  return num_nodes > 1 or (tpu is not None and tpu[1] > 8)


def run_command(sweep: spec.Sweep, run: spec.Run, workdir: str, accelerator: str,
                num_nodes: int) -> list[str]:
  """The run's gan_jax.main command on every host, `--distributed` when there are several."""
  args = spec.train_args(sweep.experiment(run), run.overrides, workdir)
  return ([f'{VENV}/bin/python'] + args +
          (['--distributed'] if _multi_host(accelerator, num_nodes) else []))


def task(sweep: spec.Sweep, run: spec.Run, workdir: str, accelerator: str, num_nodes: int,
         spot: bool) -> dict[str, Any]:
  """The SkyPilot task of one run, as the dict its YAML holds."""
  tpu = _tpu(accelerator)
  resources = {'accelerators': accelerator, 'use_spot': spot,
               'job_recovery': {'max_restarts_on_errors': MAX_RESTARTS_ON_ERRORS,
                                'recover_on_exit_codes': [check_finished.UNFINISHED]}}
  if tpu:
    resources['accelerator_args'] = {
        'runtime_version': TPU_RUNTIMES.get(tpu[0], 'tpu-ubuntu2204-base')}
  jax = ("'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html"
         if tpu else "'jax[cuda12]'")
  python, *args = run_command(sweep, run, workdir, accelerator, num_nodes)
  result = {'name': job_name(sweep, run), 'workdir': '.'}
  if num_nodes > 1:
    result['num_nodes'] = num_nodes
  # The interpreter stays unquoted: the shell expands its ~.
  return {**result, 'resources': resources, 'setup': SETUP.format(venv=VENV, jax=jax),
          'run': RUN.format(train=f'{python} {shlex.join(args)}',
                            check=f'{python} -m launch.check_finished {shlex.quote(workdir)}')}


class _BlockStrings(yaml.SafeDumper):
  """Writes multi-line strings (setup, run) as YAML `|` blocks, as people write them."""


_BlockStrings.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    'tag:yaml.org,2002:str', text, style='|' if '\n' in text else None))


def check_target(bucket: str, accelerator: str, num_nodes: int) -> None:
  """Raises UserError for a bucket, accelerator or node count that cannot work."""
  if not re.fullmatch(r'gs://[^/]+(/.*)?', bucket):
    raise UserError(f'--bucket must be a gs:// URL such as gs://my-bucket, got {bucket!r}.')
  if num_nodes < 1:
    raise UserError(f'--num_nodes must be at least 1, got {num_nodes}.')
  if _tpu(accelerator) and num_nodes > 1:
    raise UserError('A TPU pod slice is one SkyPilot node: pick a bigger slice (e.g. '
                    '--accelerator tpu-v4-64) instead of --num_nodes.')


def write_tasks(sweep: spec.Sweep, root: str, bucket: str, accelerator: str, num_nodes: int,
                spot: bool) -> list[tuple[spec.Run, str, str]]:
  """Writes ROOT/SWEEP/<run>/task.yaml and launch.json for every run.

  Returns:
    (run, job name, task path) for each run, in the sweep's order.
  """
  check_target(bucket, accelerator, num_nodes)
  jobs, names = [], {}
  for run in sweep.runs:
    name = job_name(sweep, run)
    if name in names:
      raise UserError(f'Runs {names[name]!r} and {run.name!r} get the same SkyPilot job name '
                      f'{name!r}; change a value in the sweep.')
    names[name] = run.name
    run_dir = os.path.join(root, sweep.name, run.name)
    workdir = f'{bucket.rstrip("/")}/sweeps/{sweep.name}/{run.name}'
    content = task(sweep, run, workdir, accelerator, num_nodes, spot)
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, TASK_FILE)
    with open(path, 'w') as f:
      yaml.dump(content, f, Dumper=_BlockStrings, sort_keys=False)
    spec.write_record(run_dir, spec.new_record(
        sweep, run, workdir, run_command(sweep, run, workdir, accelerator, num_nodes),
        previous=spec.read_record(run_dir)))
    jobs.append((run, name, path))
  return jobs


def launch_jobs(jobs: list[tuple[spec.Run, str, str]], root: str, sweep: spec.Sweep,
                dry_run: bool, relaunch: bool, out: TextIO) -> int:
  """Runs `sky jobs launch` for each job (prints it with `dry_run`); returns the exit status.

  A run launched before is skipped unless `relaunch`: a second job on a workdir whose first
  job still runs would have two writers.
  """
  if not dry_run and shutil.which('sky') is None:
    raise UserError("The sky command is not installed: pip install -e '.[launch]', then set up "
                    'a cloud with `sky check`.')
  failed = 0
  for run, name, path in jobs:
    run_dir = os.path.join(root, sweep.name, run.name)
    record = spec.read_record(run_dir)
    command = ['sky', 'jobs', 'launch', '-y', '-d', '-n', name, path]
    if record.get('launched') and not relaunch and not dry_run:
      out.write(f'{run.name}: launched before as {name} on {record["launched"][-1]}; see '
                '`sky jobs queue` (--relaunch launches it again).\n')
      continue
    out.write(shlex.join(command) + '\n')
    if dry_run:
      continue
    out.flush()
    if subprocess.run(command, check=False).returncode:
      failed += 1
      continue
    record.setdefault('launched', []).append(
        datetime.datetime.now().isoformat(timespec='seconds'))
    spec.write_record(run_dir, record)
  if failed:
    out.write(f'{failed} of {len(jobs)} launches failed; rerun the same command to retry '
              'them (launched runs are skipped).\n')
  return 1 if failed else 0

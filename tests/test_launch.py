"""launch/: sweep building blocks, run names, SkyPilot tasks, a local sweep end to end, summary."""
import ast
import csv
import glob
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import ml_collections
import pytest
import yaml

from gan_jax.errors import UserError
from launch import hyper, local, skypilot, spec, summary

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
SWEEPS = sorted(glob.glob(os.path.join(REPO, 'launch', 'sweeps', '*.py')))


def launch_cli(program, *args, **kwargs):
  """Runs `python -m launch.<program> args` in the repository; returns the CompletedProcess."""
  return subprocess.run([sys.executable, '-m', f'launch.{program}', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600, **kwargs)


def write_sweep(directory, body):
  path = os.path.join(directory, 'tiny.py')
  with open(path, 'w') as f:
    f.write('from launch import hyper\n\n\ndef get_sweep(arg=None):\n' +
            textwrap.indent(textwrap.dedent(body), '  '))
  return path


# --- hyper: product, zipit, names ---

def test_product_varies_the_last_sweep_fastest():
  points = hyper.product(hyper.sweep('loss', ['hinge', 'minimax']), hyper.sweep('seed', [0, 1]))
  assert points == [{'loss': 'hinge', 'seed': 0}, {'loss': 'hinge', 'seed': 1},
                    {'loss': 'minimax', 'seed': 0}, {'loss': 'minimax', 'seed': 1}]
  assert hyper.product() == [{}]
  assert hyper.product([{'a': 1, 'b': 2}], hyper.sweep('c', [3])) == [{'a': 1, 'b': 2, 'c': 3}]


def test_zipit_pairs_points_in_order():
  points = hyper.zipit(hyper.sweep('gradient_penalty', [1.0, 10.0]),
                       hyper.sweep('n_critic', [1, 5]))
  assert points == [{'gradient_penalty': 1.0, 'n_critic': 1},
                    {'gradient_penalty': 10.0, 'n_critic': 5}]


@pytest.mark.parametrize('build, message', [
    (lambda: hyper.zipit(hyper.sweep('a', [1, 2]), hyper.sweep('b', [1])),
     'zipit needs sweeps of one length; got lengths [1, 2].'),
    (lambda: hyper.product(hyper.sweep('a', [1]), hyper.sweep('a', [2])),
     "Two parts of a sweep set 'a' (1 and 2)"),
])
def test_helpers_reject_mistakes(build, message):
  with pytest.raises(UserError, match=re.escape(message)):
    build()


def test_run_names_show_what_varies_by_short_field_names():
  points = hyper.product([{'num_steps': 100}], [{'loss': 'hinge', 'model.spectral_norm': True},
                                               {'loss': 'least_squares'}],
                         hyper.sweep('seed', [0, 1]))
  assert hyper.run_names(points, 'x') == [
      'loss=hinge,spectral_norm=True,seed=0', 'loss=hinge,spectral_norm=True,seed=1',
      'loss=least_squares,seed=0', 'loss=least_squares,seed=1']
  # One point: nothing varies, so nothing is left out.
  assert hyper.run_names([{'num_steps': 100}], 'x') == ['num_steps=100']
  assert hyper.run_names([{}], 'x') == ['default']


def test_run_names_are_stable_exact_and_safe():
  # Shared last parts keep their full names; floats keep every digit and lose the '+'.
  point = {'g_optimizer.learning_rate': 1e-05, 'd_optimizer.learning_rate': 0.0002,
           'gradient_penalty': 1e20, 'dataset': 'a b/c'}
  assert hyper.run_name(point) == ('g_optimizer.learning_rate=1e-05,'
                                   'd_optimizer.learning_rate=0.0002,gradient_penalty=1e20,'
                                   'dataset=a_b_c')
  # Adding runs keeps the names of the others (the same fields vary).
  seeds = hyper.sweep('seed', [0, 1])
  assert hyper.run_names(seeds, 'x') == hyper.run_names(seeds + hyper.sweep('seed', [2]), 'x')[:2]


@pytest.mark.parametrize('points, message', [
    ([], 'must return a non-empty list'),
    ([{'seed': 1}, {'seed': 1}, {'seed': 2}], "two points have the same run name 'seed=1'"),
    ([{'dataset': 'a/b'}, {'dataset': 'a_b'}], "same run name 'dataset=a_b'"),
    ([['seed', 1]], 'a sweep point must be a dict'),
    ([{'seed': [1, 2]}], 'seed=\\[1, 2\\] must be a bool, int, float or str'),
    ([{'model width': 1}], "'model width' is not a config field name"),
])
def test_run_names_reject_bad_sweeps(points, message):
  with pytest.raises(UserError, match=message):
    hyper.run_names(points, 'x')


# --- the shipped sweeps ---

@pytest.mark.parametrize('path', SWEEPS, ids=os.path.basename)
@pytest.mark.parametrize('arg', [None, 'cpu'])
def test_shipped_sweeps_build_valid_configs(path, arg, monkeypatch):
  monkeypatch.chdir(REPO)  # sweep and experiment paths are relative to the repository
  sweep = spec.load(os.path.relpath(path, REPO) + (f':{arg}' if arg else ''))
  configs = spec.check_runs(sweep)
  assert set(configs) == {run.name for run in sweep.runs}
  for run in sweep.runs:
    for field, value in run.overrides.items():
      node = configs[run.name]
      for part in field.split('.'):
        node = node[part]
      assert node == value


def test_loss_study_covers_five_losses_over_seeds(monkeypatch):
  monkeypatch.chdir(REPO)
  for arg, seeds in ((None, 5), ('cpu', 3)):
    sweep = spec.load('launch/sweeps/loss_study.py' + (f':{arg}' if arg else ''))
    losses = [run.overrides['loss'] for run in sweep.runs]
    assert sorted(set(losses)) == ['hinge', 'least_squares', 'minimax', 'non_saturating',
                                   'wasserstein']
    assert all(losses.count(loss) == seeds for loss in set(losses))
    # Equal budget: the same number of steps, and an evaluation at the end, for every run.
    assert len({run.overrides.get('num_steps') for run in sweep.runs}) == 1
  assert sweep.name == 'loss_study_cpu' and sweep.config == 'experiments/toy_grid.py'
  assert 'loss=hinge,spectral_norm=True,seed=2' in [run.name for run in sweep.runs]


def test_an_experiment_file_is_a_sweep_of_one_run(monkeypatch):
  monkeypatch.chdir(REPO)
  sweep = spec.load('experiments/ns_gan.py:cpu')
  assert (sweep.name, sweep.config) == ('ns_gan_cpu', 'experiments/ns_gan.py:cpu')
  assert sweep.runs == (spec.Run('default', {}),)
  assert list(spec.check_runs(sweep)) == ['default']


def test_train_args_are_the_gan_jax_main_command():
  assert spec.train_args('experiments/x.py:cpu', {'loss': 'hinge', 'model.spectral_norm': True,
                                                  'gradient_penalty': 1e-05}, 'w') == [
      '-m', 'gan_jax.main', '--config=experiments/x.py:cpu', '--workdir=w', '--config.loss=hinge',
      '--config.model.spectral_norm=True', '--config.gradient_penalty=1e-05']


# --- SkyPilot tasks ---

SKY_SETUPS = {  # accelerator, num_nodes, spot -> hosts per run
    'tpu-pod-spot': ('tpu-v4-32', 1, True),
    'tpu-vm': ('tpu-v4-8', 1, False),
    'h100x2': ('H100:8', 2, False),
}


@pytest.mark.parametrize('setup', SKY_SETUPS)
@pytest.mark.parametrize('path', SWEEPS + [os.path.join(REPO, 'experiments', 'dcgan64.py')],
                         ids=os.path.basename)
def test_sky_dry_run_tasks_parse_with_skypilot(tmp_path, path, setup, capsys, monkeypatch):
  sky = pytest.importorskip('sky')
  monkeypatch.chdir(REPO)  # the tasks sync the repository: `workdir: .`
  accelerator, num_nodes, spot = SKY_SETUPS[setup]
  sweep = spec.load(os.path.relpath(path, REPO))
  jobs = skypilot.write_tasks(sweep, str(tmp_path), 'gs://bucket/p', accelerator, num_nodes,
                              spot)
  assert skypilot.launch_jobs(jobs, str(tmp_path), sweep, dry_run=True, relaunch=False,
                              out=sys.stdout) == 0
  printed = capsys.readouterr().out.splitlines()
  assert len(printed) == len(sweep.runs) == len(jobs)
  distributed = setup != 'tpu-vm'
  for (run, name, task_path), line in zip(jobs, printed):
    assert line == f'sky jobs launch -y -d -n {name} {task_path}'
    task = sky.Task.from_yaml(task_path)
    assert task.name == name and task.num_nodes == num_nodes
    (resources,) = task.resources
    assert resources.use_spot == spot
    assert resources.accelerators == ({accelerator: 1} if ':' not in accelerator else
                                      {'H100': 8})
    workdir = f'gs://bucket/p/sweeps/{sweep.name}/{run.name}'
    train, check = task.run.splitlines()[1:]
    assert f'--workdir={workdir}' in train and train.endswith('--distributed') == distributed
    assert check == f'~/gan_jax_venv/bin/python -m launch.check_finished {workdir}'
    with open(task_path) as f:
      assert yaml.safe_load(f)['resources']['job_recovery'] == {
          'max_restarts_on_errors': 3, 'recover_on_exit_codes': [75]}
    assert ("jax[tpu]" if accelerator.startswith('tpu') else "jax[cuda12]") in task.setup
    assert spec.read_record(os.path.dirname(task_path))['workdir'] == workdir


@pytest.mark.parametrize('args, message', [
    (['--sweep=launch/sweeps/nope.py'],
     f'Error: Sweep file launch/sweeps/nope.py does not exist (in {REPO}).'),
    (['--sweep=launch/sweeps/loss_study.py:gpu'],
     "Error: Unknown sweep argument 'gpu'; valid ones: cpu (or none for the full sweep)."),
    (['--sweep=launch/sweeps/loss_study.py', '--target=sky', '--accelerator=tpu-v4-8'],
     'Error: --target sky needs --bucket, e.g. --accelerator tpu-v4-32 --bucket gs://my-bucket.'),
    (['--sweep=launch/sweeps/loss_study.py', '--bucket=gs://b'],
     'Error: --bucket is only for --target sky.'),
    (['--sweep=launch/sweeps/loss_study.py', '--target=sky', '--accelerator=tpu-v4-8',
      '--bucket=my-bucket', '--dry_run'],
     "Error: --bucket must be a gs:// URL such as gs://my-bucket, got 'my-bucket'."),
])
def test_bad_input_is_one_error_line(args, message):
  result = launch_cli('sweep', *args)
  assert result.returncode == 1, result.stderr
  assert result.stderr.strip().splitlines() == [message]


# --- local runs ---

def test_last_step_reads_the_last_complete_line(tmp_path):
  assert local.last_step(str(tmp_path)) is None
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    # A line a killed run left cut short, then the last line being written.
    f.write('{"step": 5, "d_loss": 1.0}\n{"step": 10}\n{"st\n{"step": 1')
  assert local.last_step(str(tmp_path)) == 10


@pytest.mark.parametrize('attempt, step, train_minutes, finished', [
    ({'returncode': 0, 'stopped': False}, 100, 0.0, True),
    ({'returncode': 0, 'stopped': False}, 50, 0.0, False),  # stopped elsewhere, or steps grew
    ({'returncode': 0, 'stopped': False}, 50, 1.0, True),  # its wall-clock budget ended it
    ({'returncode': 0, 'stopped': True}, 100, 0.0, False),
    ({'returncode': 1, 'stopped': False}, 100, 0.0, False),
])
def test_is_finished(attempt, step, train_minutes, finished):
  config = ml_collections.ConfigDict({'num_steps': 100, 'train_minutes': train_minutes})
  record = {'attempts': [{'seconds': 1.0, **attempt}]}
  assert local.is_finished(record, step, config) == finished
  assert not local.is_finished({'attempts': []}, step, config)


def test_local_sweep_runs_skips_finished_runs_and_summarizes(tmp_path):
  sweep_file = write_sweep(tmp_path, """\
      fixed = {'eval_every': 2, 'eval_num_samples': 100}
      return 'experiments/toy_grid.py:smoke', hyper.product([fixed], hyper.sweep('seed', [0, 1]))
      """)
  root = str(tmp_path / 'runs')
  args = [f'--sweep={sweep_file}', '--target=local', '--parallel=2', f'--root={root}']
  first = launch_cli('sweep', *args)
  assert first.returncode == 0, first.stdout + first.stderr
  sweep_dir = os.path.join(root, 'tiny')
  for seed in (0, 1):
    run_dir = os.path.join(sweep_dir, f'seed={seed}')
    record = spec.read_record(run_dir)
    assert [attempt['returncode'] for attempt in record['attempts']] == [0]
    assert record['overrides'] == {'eval_every': 2, 'eval_num_samples': 100, 'seed': seed}
    assert local.last_step(run_dir) == 2
    assert 'Trained to step 2' in open(os.path.join(run_dir, spec.LOG_FILE)).read()
  assert 'All 2 runs done.' in first.stdout

  again = launch_cli('sweep', *args)
  assert again.returncode == 0, again.stdout + again.stderr
  assert '2 done before, skipped' in again.stdout
  assert len(spec.read_record(os.path.join(sweep_dir, 'seed=0'))['attempts']) == 1

  result = launch_cli('summary', sweep_dir)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].split() == ['seed', 'status', 'step', 'wall', 'eval_step', 'modes_covered',
                              'high_quality_share']
  assert [line.split()[:3] for line in lines[1:3]] == [['0', 'done', '2'], ['1', 'done', '2']]
  with open(os.path.join(sweep_dir, 'summary.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [row['run'] for row in rows] == ['seed=0', 'seed=1']
  assert all(0 <= int(row['modes_covered']) <= 25 for row in rows)
  assert os.path.getsize(os.path.join(sweep_dir, 'summary.png')) > 1000


def test_ctrl_c_stops_the_runs_saved_and_one_sweep_runs_at_a_time(tmp_path):
  sweep_file = write_sweep(tmp_path, """\
      return 'experiments/toy_grid.py:smoke', [{'num_steps': 100_000, 'checkpoint_every': 100_000}]
      """)
  root = str(tmp_path / 'runs')
  process = subprocess.Popen(
      [sys.executable, '-m', 'launch.sweep', f'--sweep={sweep_file}', f'--root={root}'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  run_dir = os.path.join(root, 'tiny', 'num_steps=100000,checkpoint_every=100000')
  deadline = time.monotonic() + 300
  while local.last_step(run_dir) is None:  # training, so gan_jax's signal handler is set
    assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
    time.sleep(0.5)
  second = launch_cli('sweep', f'--sweep={sweep_file}', f'--root={root}')
  assert second.returncode == 1 and second.stderr.strip().splitlines() == [
      f'Error: Another launch.sweep is running {root}/tiny; wait for it to end or stop it first.']
  process.send_signal(signal.SIGINT)
  output, _ = process.communicate(timeout=300)
  assert process.returncode == 128 + signal.SIGINT, output
  assert 'Stopped by SIGINT' in output
  (attempt,) = spec.read_record(run_dir)['attempts']
  assert attempt['returncode'] == 0 and attempt['stopped']  # gan_jax saved and exited cleanly
  assert os.listdir(os.path.join(run_dir, 'checkpoints'))
  assert 'Stopped by SIGTERM' in open(os.path.join(run_dir, spec.LOG_FILE)).read()


@pytest.mark.parametrize('steps, train_minutes, status', [(10, 0.0, 0), (5, 0.0, 75), (5, 1.0, 0)])
def test_check_finished_exits_75_for_a_stopped_run(tmp_path, steps, train_minutes, status):
  _fake_run(str(tmp_path), 'run', {}, [], [{'step': steps}], [], train_minutes=train_minutes)
  result = launch_cli('check_finished', str(tmp_path / 'run'))
  assert result.returncode == status, result.stderr
  if status:
    assert result.stdout == (f'{tmp_path}/run stopped at step 5 of 10: exiting 75 to have the '
                             'task restarted, which resumes it.\n')


# --- summary ---

def _fake_run(sweep_dir, name, overrides, attempts, metrics, evaluations, train_minutes=0.0):
  """A run folder as a local sweep leaves it: launch.json, and a workdir of num_steps 10."""
  run_dir = os.path.join(sweep_dir, name)
  os.makedirs(run_dir)
  spec.write_record(run_dir, {'overrides': overrides, 'workdir': run_dir, 'attempts': attempts})
  with open(os.path.join(run_dir, 'config.json'), 'w') as f:
    json.dump({'num_steps': 10, 'train_minutes': train_minutes}, f)
  for file, rows in (('metrics.jsonl', metrics), ('eval.jsonl', evaluations)):
    with open(os.path.join(run_dir, file), 'w') as f:
      f.writelines(json.dumps(row) + '\n' for row in rows)


def test_summary_rows_latest_scores_and_status(tmp_path):
  sweep_dir = str(tmp_path)
  clean = [{'seconds': 65.0, 'returncode': 0, 'stopped': False}]
  _fake_run(sweep_dir, 'loss=hinge,seed=0', {'loss': 'hinge', 'seed': 0}, clean,
            [{'step': 5}, {'step': 10}],
            [{'step': 10, 'fid': 30.0, 'kid': 1.5, 'precision': 0.5, 'recall': 0.25},
             {'step': 5, 'fid': 50.0}])  # evaluate's older checkpoint, scored later
  _fake_run(sweep_dir, 'loss=hinge,seed=1', {'loss': 'hinge', 'seed': 1},
            [{'seconds': 5.0, 'returncode': 0, 'stopped': True}], [{'step': 5}], [])
  _fake_run(sweep_dir, 'loss=minimax,seed=0', {'loss': 'minimax', 'seed': 0},
            [{'seconds': 3.0, 'returncode': 1, 'stopped': False}], [], [])
  header, cells = summary.table(summary.read_sweep(sweep_dir))
  assert header == ['run', 'loss', 'seed', 'status', 'step', 'wall', 'eval_step', 'fid', 'kid',
                    'precision', 'recall']
  assert cells == [
      ['loss=hinge,seed=0', 'hinge', 0, 'done', 10, '1m05s', 10, 30.0, 1.5, 0.5, 0.25],
      ['loss=hinge,seed=1', 'hinge', 1, 'stopped', 5, '5s', None, None, None, None, None],
      ['loss=minimax,seed=0', 'minimax', 0, 'failed', None, '3s', None, None, None, None, None]]
  text = summary.format_table(header, cells)
  assert text.splitlines()[1].split() == ['loss=hinge,seed=0', 'hinge', '0', 'done', '10',
                                          '1m05s', '10', '30', '1.5', '0.5', '0.25']
  assert summary.plot(str(tmp_path / 'plot.png'), summary.read_sweep(sweep_dir), 'test')
  assert os.path.getsize(tmp_path / 'plot.png') > 1000


def test_summary_plots_against_the_fields_that_vary_independently():
  def rows(points):
    return [{'overrides': point} for point in points]

  losses = [{'loss': 'hinge', 'model.spectral_norm': True}, {'loss': 'wasserstein', 'n_critic': 5},
            {'loss': 'least_squares'}]
  seeds = hyper.sweep('seed', [0, 1])
  assert summary.swept_fields(rows(hyper.product(seeds, losses))) == [
      'loss', 'model.spectral_norm', 'n_critic', 'seed']
  assert summary.plotted_fields(rows(hyper.product(losses, seeds))) == ['loss']
  grid = hyper.product(hyper.sweep('gradient_penalty', [1.0, 10.0]),
                       hyper.sweep('n_critic', [1, 5]))
  assert summary.plotted_fields(rows(grid)) == ['gradient_penalty', 'n_critic']
  assert summary.plotted_fields(rows(seeds)) == ['seed']


def test_summary_of_a_folder_without_runs_is_one_error_line(tmp_path):
  result = launch_cli('summary', str(tmp_path))
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f'Error: {tmp_path} holds no runs (folders with launch.json); python -m launch.sweep '
      'writes them.']


def test_gan_jax_never_imports_launch_and_launch_imports_jax_and_sky_lazily():
  for path in glob.glob(os.path.join(REPO, 'gan_jax', '**', '*.py'), recursive=True):
    for node in ast.walk(ast.parse(open(path).read())):
      names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
               [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
      assert not [name for name in names if name.split('.')[0] in ('launch', 'sky')], path
  result = subprocess.run(
      [sys.executable, '-c', 'import sys, launch.sweep, launch.summary; '
       'print(sorted({"jax", "sky", "matplotlib"} & sys.modules.keys()))'],
      cwd=REPO, capture_output=True, text=True, check=True)
  assert result.stdout.strip() == '[]'


def _readme_sky_commands():
  """The `launch.sweep --target sky` commands of the README's "Scaling out", as argument lists."""
  with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
    section = f.read().split('## Scaling out', 1)[1].split('\n## ', 1)[0]
  return [line.split()[3:] for line in section.splitlines()
          if line.startswith('python -m launch.sweep') and '--target sky' in line]


def test_readme_sky_commands_write_tasks_that_skypilot_parses(tmp_path):
  sky = pytest.importorskip('sky')
  commands = _readme_sky_commands()
  assert len(commands) == 2
  for args in commands:
    args = [arg.replace('gs://BUCKET', 'gs://bucket') for arg in args if arg != '--dry_run']
    result = launch_cli('sweep', *args, f'--root={tmp_path}', '--dry_run')
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
      task = sky.Task.from_yaml(line.split()[-1])
      assert 'gan_jax.main --config=experiments/dcgan64.py' in task.run

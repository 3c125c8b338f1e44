"""A sweep file, loaded and checked, and the files of its runs.

A sweep file `launch/sweeps/NAME.py` defines `get_sweep(arg=None)` returning the experiment
config (`'experiments/toy_grid.py'`, with a `:preset` if wanted) and a list of override dicts
built with `launch.hyper`, or a list of `hyper.Experiment`s for a sweep of several
experiments. `--sweep launch/sweeps/NAME.py:ARG` passes ARG. The runs live
in ROOT/NAME_ARG/<run name>/, each with `launch.json` recording the run and its attempts;
the sweep folder's `.lock` keeps a second sweep process out. Each run is a `gan_jax.main`
command whose workdir (config.json, metrics.jsonl, eval.jsonl) says how far it got.
"""
import ast
import contextlib
import copy
import dataclasses
import fcntl
import importlib.util
import json
import os
import sys
import traceback
from typing import Any, Iterator, Mapping, Sequence

import ml_collections

from gan_jax import paths
from gan_jax.errors import UserError, unknown_name_error
from launch import hyper

RECORD_FILE = 'launch.json'  # in each run's folder: its overrides, workdir, command, attempts
LOG_FILE = 'launch.log'  # a local run's stdout and stderr, every attempt appended


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  overrides: dict[str, Any]
  config: str = ''  # its experiment in a sweep of several ('': the sweep's)
  published: dict[str, float] = dataclasses.field(default_factory=dict)  # its paper's scores


@dataclasses.dataclass(frozen=True)
class Sweep:
  name: str  # the sweep file's name, with _ARG for an argument: loss_study_cpu
  source: str  # the --sweep value
  config: str  # the experiment, e.g. experiments/toy_grid.py or experiments/ns_gan.py:cpu
  runs: tuple[Run, ...]

  def experiment(self, run: Run) -> str:
    """The experiment file (with its :preset) that `run` trains."""
    return run.config or self.config


def _error_line(error: BaseException, path: str) -> str:
  """`Type: message` of `error`, with the line of `path` that raised it or called what did."""
  lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
           if os.path.abspath(frame.filename) == os.path.abspath(path)]
  where = f' at line {lines[-1]}' if lines else ''
  return f'{where}: {type(error).__name__}: {" ".join(str(error).split())}'


def call_file(path: str, function: str, arg: str | None, kind: str) -> Any:
  """Imports the Python file `path` and returns `function(arg)` (or `function()` for no arg).

  Args:
    path: a sweep or experiment file.
    function: 'get_sweep' or 'get_config'.
    arg: the text after `:` in `path:arg`, or None.
    kind: 'Sweep file' or 'Config file', for the messages.
  Raises:
    UserError: the file does not exist, lacks `function`, or raised; the message names its line.
  """
  if not os.path.isfile(path):
    raise UserError(f'{kind} {path} does not exist (in {os.getcwd()}).')
  module_spec = importlib.util.spec_from_file_location(f'{function}:{os.path.abspath(path)}', path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[module_spec.name] = module  # dataclasses defined in the file look it up
  try:
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, function, None)):
      raise UserError(f'{kind} {path} has no {function}(arg=None) function.')
    return getattr(module, function)(*(() if arg is None else (arg,)))
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except; whatever the file raised
    raise UserError(f'{kind} {path} failed{_error_line(e, path)}') from e


def _defines(path: str, function: str) -> bool:
  """Whether the Python file `path` defines `function` at its top level (read, not run)."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  return any(isinstance(node, ast.FunctionDef) and node.name == function for node in tree.body)


def load(source: str) -> Sweep:
  """Loads `launch/sweeps/NAME.py[:ARG]`: its config and its runs, named and checked.

  An experiment file (`experiments/NAME.py[:ARG]`, with get_config and no get_sweep) is a
  sweep of one run, named `default`: one training launched the same way as a sweep's.
  """
  path, _, arg = source.partition(':')
  stem = os.path.splitext(os.path.basename(path))[0]
  name = f'{stem}_{arg}' if arg else stem
  if (os.path.isfile(path) and not _defines(path, 'get_sweep')
      and _defines(path, 'get_config')):
    return Sweep(name=name, source=source, config=source, runs=(Run('default', {}),))
  result = call_file(path, 'get_sweep', arg or None, 'Sweep file')
  where = f'Sweep file {path}'
  if (isinstance(result, (tuple, list)) and result
      and all(isinstance(item, hyper.Experiment) for item in result)):
    return _several_experiments(name, source, result, where)
  if (not isinstance(result, (tuple, list)) or len(result) != 2
      or not isinstance(result[0], str)):
    raise UserError(f'{where}: get_sweep() must return (experiment config path, list of '
                    f'override dicts) or a list of hyper.Experiment, got {result!r:.100}.')
  config, points = result
  names = hyper.run_names(points, where=where)
  return Sweep(name=name, source=source, config=config,
               runs=tuple(Run(name, dict(point)) for name, point in zip(names, points)))


def _several_experiments(name: str, source: str, experiments: Sequence[hyper.Experiment],
                         where: str) -> Sweep:
  """A sweep of several experiments: each point a run named after its experiment."""
  for experiment in experiments:
    if (not isinstance(experiment.config, str) or not isinstance(experiment.points, (list, tuple))
        or not all(isinstance(score, str) and isinstance(value, (int, float))
                   for score, value in experiment.published.items())):
      raise UserError(f'{where}: a hyper.Experiment holds an experiment path, a list of override '
                      f'dicts and published scores by name, got {experiment!r:.100}.')
  points = [point for experiment in experiments for point in experiment.points]
  owners = [experiment for experiment in experiments for _ in experiment.points]
  names = hyper.run_names(points, where, [hyper.experiment_name(experiment.config)
                                          for experiment in owners])
  return Sweep(name=name, source=source, config='', runs=tuple(
      Run(run_name, dict(point), experiment.config, dict(experiment.published))
      for run_name, point, experiment in zip(names, points, owners)))


def _set_field(config: Any, field: str, value: Any) -> None:
  """Sets dotted `field` of a locked ConfigDict, as `--config.field=value` would."""
  parts = field.split('.')
  node = config
  for depth, part in enumerate(parts):
    where = '.'.join(['config'] + parts[:depth])
    if not hasattr(node, 'keys'):
      raise UserError(f'{where} is a value, not a group of fields.')
    if part not in node:
      raise unknown_name_error(f'field in {where}', part, node.keys())
    if depth < len(parts) - 1:
      node = node[part]
  try:
    node[parts[-1]] = value
  except TypeError as e:  # ml_collections: the value does not fit the field's type
    raise UserError(f'{field}={value!r} does not fit the field: {e}') from e


def check_runs(sweep: Sweep) -> dict[str, Any]:
  """Builds every run's config as gan_jax.main will and validates it; returns them by run name.

  Catches a misspelled field or loss name before a single process starts (or a single cloud
  VM is paid for). Imports the experiment file, hence gan_jax and jax: seconds, once.
  """
  from gan_jax import validation  # pylint: disable=import-outside-toplevel; jax, only here
  bases = {}
  for experiment in dict.fromkeys(sweep.experiment(run) for run in sweep.runs):
    path, _, arg = experiment.partition(':')
    try:
      bases[experiment] = call_file(path, 'get_config', arg or None, 'Config file')
    except UserError as e:
      raise UserError(f'Sweep {sweep.source}: {e}') from e
  run_configs = {}
  for run in sweep.runs:
    config = copy.deepcopy(bases[sweep.experiment(run)])
    config.lock()
    try:
      for field, value in run.overrides.items():
        _set_field(config, field, value)
      validation.validate(config, num_devices=1)
    except UserError as e:
      raise UserError(f'Sweep {sweep.source}, run {run.name}: {e}') from e
    run_configs[run.name] = config
  return run_configs


def _flag_value(value: Any) -> str:
  return repr(float(value)) if isinstance(value, float) else str(value)


def train_args(config: str, overrides: Mapping[str, Any], workdir: str) -> list[str]:
  """The arguments of `python -m gan_jax.main` for one run (without the interpreter)."""
  return (['-m', 'gan_jax.main', f'--config={config}', f'--workdir={workdir}'] +
          [f'--config.{field}={_flag_value(value)}' for field, value in overrides.items()])


@contextlib.contextmanager
def locked(sweep_dir: str) -> Iterator[None]:
  """Holds SWEEP/.lock; raises UserError if another process holds it.

  Two sweeps running the same runs would train each workdir twice at once (or launch two
  cloud jobs on it).
  """
  os.makedirs(sweep_dir, exist_ok=True)
  with open(os.path.join(sweep_dir, '.lock'), 'w') as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
      raise UserError(f'Another launch.sweep is running {sweep_dir}; wait for it to end or stop '
                      'it first.') from e
    yield  # closing the file releases the lock, as does the process's end


def read_record(run_dir: str) -> dict[str, Any] | None:
  """A run folder's launch.json, or None if it has none yet."""
  path = paths.path(run_dir) / RECORD_FILE
  return json.loads(path.read_text()) if path.exists() else None


def write_record(run_dir: str, record: Mapping[str, Any]) -> None:
  """Writes a run folder's launch.json atomically: a killed sweep leaves the old one whole."""
  text = json.dumps(record, indent=2)
  paths.write_atomically(paths.path(run_dir) / RECORD_FILE, lambda f: f.write(text.encode()))


def read_workdir(workdir: str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
  """(config.json as a ConfigDict or None, metrics.jsonl rows, eval.jsonl rows) of a gan_jax
  workdir, local or in a bucket (through gan_jax.paths); a line being written (cut short) is
  left out."""
  path = paths.path(workdir)
  config = path / 'config.json'
  return (ml_collections.ConfigDict(json.loads(config.read_text())) if config.exists() else None,
          paths.read_jsonl(path / 'metrics.jsonl'), paths.read_jsonl(path / 'eval.jsonl'))


def reached_end(step: int | None, config: Any) -> bool:
  """Whether a run that exited 0 after logging `step` last ended its training.

  Training logs its last step, so a run stopped by a signal (which also exits 0) logged fewer
  than num_steps; a wall-clock budget (config.train_minutes) may end a run sooner, which
  its files do not tell apart from a stop, so such a run counts as ended.
  """
  return config.train_minutes > 0 or (step or 0) >= config.num_steps


def new_record(sweep: Sweep, run: Run, workdir: str, command: Sequence[str],
               previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """What launch.json holds for a run: the sweep's current settings, and from `previous` (the
  record of earlier runs of the sweep) the attempts and launches so far.

  The settings are rewritten because a fixed field, left out of the run's name, may change.
  """
  history = {key: previous[key] for key in ('attempts', 'launched') if previous and key in previous}
  published = {'published': run.published} if run.published else {}
  return {'sweep': sweep.source, 'config': sweep.experiment(run), 'overrides': run.overrides,
          **published, 'workdir': workdir, 'command': list(command), 'attempts': [], **history}

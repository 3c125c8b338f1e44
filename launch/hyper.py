"""Sweep building blocks: lists of override dicts, combined by `product` and `zipit`.

As XManager's `hyper` module and big_vision's sweeps: a sweep is a plain list of dicts
{dotted config field: value}, one per run, so a sweep file can also write one by hand.

  product(sweep('loss', ['hinge', 'least_squares']), sweep('seed', range(3)))  # 6 runs
  zipit(sweep('gradient_penalty', [1.0, 10.0]), sweep('n_critic', [1, 5]))      # 2 runs

A sweep may also train several experiments: a list of `Experiment`s, each with its points
and the scores its paper published (launch/sweeps/papers.py).
"""
import os
import re
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from gan_jax.errors import UserError

Point = dict[str, Any]
# What `--config.field=value` carries: ml_collections parses it back by the field's type.
VALUE_TYPES = (bool, int, float, str)


class Experiment(NamedTuple):
  """One experiment of a sweep over several: its runs are its points, named after it."""
  config: str  # experiments/NAME.py or NAME.py:ARG, as gan_jax.main's --config takes it
  points: Sequence[Mapping[str, Any]] = ({},)
  # The scores its paper published ({'fid': 21.7, 'inception_score': 8.22}): each run's
  # launch.json keeps them, and launch.summary shows them beside the run's own.
  published: Mapping[str, float] = {}


def experiment_name(config: str) -> str:
  """`experiments/resnet_sngan.py:cifar10` -> `resnet_sngan_cifar10`."""
  path, _, arg = config.partition(':')
  stem = os.path.splitext(os.path.basename(path))[0]
  return f'{stem}_{arg}' if arg else stem


def sweep(field: str, values: Iterable[Any]) -> list[Point]:
  """One run per value of `field`: [{field: v} for v in values]."""
  return [{field: value} for value in values]


def _merge(parts: Sequence[Mapping[str, Any]]) -> Point:
  """The union of `parts`; a field set by two of them is a mistake in the sweep."""
  point = {}
  for part in parts:
    for field, value in part.items():
      if field in point:
        raise UserError(f'Two parts of a sweep set {field!r} ({point[field]!r} and {value!r}); '
                        'each field may come from one part only.')
      point[field] = value
  return point


def product(*sweeps: Sequence[Mapping[str, Any]]) -> list[Point]:
  """Every combination of one point from each sweep; the last sweep varies fastest."""
  points = [{}]
  for part in sweeps:
    points = [_merge((point, other)) for point in points for other in part]
  return points


def zipit(*sweeps: Sequence[Mapping[str, Any]]) -> list[Point]:
  """The i-th points of all sweeps merged into the i-th run; the sweeps must be equally long."""
  lengths = sorted({len(part) for part in sweeps})
  if len(lengths) > 1:
    raise UserError(f'zipit needs sweeps of one length; got lengths {lengths}.')
  return [_merge(parts) for parts in zip(*sweeps)]


def _format(value: Any) -> str:
  """A value as it appears in a run's name, e.g. 0.0001, 1e-05, True, hinge."""
  if isinstance(value, float):
    return repr(float(value)).replace('+', '')  # 1e+20 -> 1e20: no '+' in names
  return re.sub(r'[^A-Za-z0-9._-]+', '_', str(value))


def run_name(point: Mapping[str, Any], omit: Iterable[str] = ()) -> str:
  """A run's folder name: its overrides as `field=value` joined by commas, `omit` left out.

  Each field is named by its last part (`spectral_norm` for `model.spectral_norm`) unless two
  of the point's fields share it. Only letters, digits and `._-=,` appear, so the name is
  safe as a local folder, a bucket path and a shell word.
  """
  fields = [field for field in point if field not in omit]
  last = [field.rsplit('.', 1)[-1] for field in fields]
  return ','.join(f'{short if last.count(short) == 1 else field}={_format(point[field])}'
                  for field, short in zip(fields, last)) or 'default'


def _check_point(point: Any, where: str) -> None:
  if not isinstance(point, Mapping):
    raise UserError(f'{where}: a sweep point must be a dict of config field -> value, got '
                    f'{point!r:.80}.')
  for field, value in point.items():
    if not isinstance(field, str) or not re.fullmatch(r'[A-Za-z_]\w*(\.[A-Za-z_]\w*)*', field):
      raise UserError(f'{where}: {field!r} is not a config field name such as model.width.')
    if not isinstance(value, VALUE_TYPES):
      raise UserError(f'{where}: {field}={value!r} must be a bool, int, float or str, got '
                      f'{type(value).__name__}.')


def run_names(points: Sequence[Mapping[str, Any]], where: str,
              experiments: Sequence[str] | None = None) -> list[str]:
  """Checks a sweep's points and names their runs; raises UserError for a bad sweep.

  A field set to the same value in every point is left out of the names (the sweep's fixed
  settings), so names show what varies. A name depends on its point and on which fields are
  fixed: adding runs keeps the others' names, and so their finished workdirs, unless it makes
  a fixed field vary.

  Args:
    points: the override dicts `get_sweep` returned.
    where: the sweep file, for the messages.
    experiments: for a sweep of several experiments, each point's experiment name
      (`experiment_name`): it starts the run's name, and what else varies follows it
      (`resnet_sngan_cifar10`, `resnet_sngan_cifar10,seed=1`).
  Returns:
    The names, one per point, in order; distinct.
  """
  if not isinstance(points, (list, tuple)) or not points:
    raise UserError(f'{where}: get_sweep() must return a non-empty list of override dicts, got '
                    f'{type(points).__name__} {points!r:.80}.')
  for point in points:
    _check_point(point, where)
  first = points[0]
  fixed = {field for field, value in first.items()
           if all(field in point and point[field] == value for point in points)}
  seen = {}
  for i, point in enumerate(points):
    name = run_name(point, omit=fixed if len(points) > 1 else ())
    if experiments is not None:
      name = experiments[i] + ('' if name == 'default' else f',{name}')
    if name in seen:
      raise UserError(f'{where}: two points have the same run name {name!r}: {seen[name]} and '
                      f'{dict(point)}.')
    seen[name] = dict(point)
  return list(seen)


def unknown_arg(arg: str, valid: Sequence[str]) -> UserError:
  """The error for a sweep file's unknown `:arg`, as experiments give for an unknown preset."""
  return UserError(f'Unknown sweep argument {arg!r}; valid ones: {", ".join(sorted(valid))} '
                   '(or none for the full sweep).')

r"""One table for a sweep: a row per run with its overrides, status, progress and latest scores.

python -m launch.summary runs/sweeps/loss_study_cpu [--csv FILE] [--png FILE]

Reads each run's launch.json (its overrides and attempts) and its workdir's config.json,
metrics.jsonl and eval.jsonl (local or gs://, through gan_jax.paths). The evaluation shown is
the latest line of eval.jsonl, written by training's config.eval_every or by
gan_jax.evaluate: FID, KID, precision and recall for images; modes covered and the
high-quality share for toy data. Writes the table as CSV (default SWEEP/summary.csv) and a
PNG (default SWEEP/summary.png) of each score against each swept hyperparameter (but seed, and
those another one determines, such as loss_study's n_critic=5 that comes with WGAN-GP), every
run a dot, so the seeds of one setting show as its spread. A sweep of several experiments
(launch/sweeps/papers.py) gets an `experiment` column, and a `paper_<score>` column beside
each score its experiments' papers published (kept in each run's launch.json).
"""
import csv
import os
from typing import Any, Sequence

from absl import app
from absl import flags
import ml_collections

from gan_jax import cli
from gan_jax.errors import UserError
from launch import hyper, local, spec

FLAGS = flags.FLAGS
flags.DEFINE_string('csv', None, 'Where the table goes as CSV; default SWEEP/summary.csv.')
flags.DEFINE_string('png', None, 'Where the plot goes; default SWEEP/summary.png.')

# The scores shown, in this order, from whichever the runs' eval.jsonl hold.
SCORES = ('fid', 'inception_score', 'kid', 'precision', 'recall', 'modes_covered',
          'high_quality_share')
PAPER = 'paper_'  # the column of a score as the run's paper published it: paper_fid
# Scores plotted: FID for images, both toy scores for toy data.
PLOTTED = ('fid', 'modes_covered', 'high_quality_share')


def _status(record: dict[str, Any], step: int | None,
            config: ml_collections.ConfigDict | None) -> str:
  """done, failed, stopped or unfinished for a local run; launched or done for a cloud one."""
  attempts = record['attempts']
  if config is not None and local.is_finished(record, step, config):
    return 'done'
  if attempts:
    last = attempts[-1]
    return 'stopped' if last['stopped'] else 'failed' if last['returncode'] else 'unfinished'
  if record.get('launched'):  # a SkyPilot job: `sky jobs queue` knows more
    return 'done' if config and spec.reached_end(step, config) else 'launched'
  return 'not started'


def read_run(run_dir: str) -> dict[str, Any]:
  """One row of the table: the run, its overrides, status, step, wall time and latest scores."""
  record = spec.read_record(run_dir)
  # The experiment is a field like the overrides: shown where it varies (a sweep of several).
  experiment = {'experiment': hyper.experiment_name(record['config'])} if 'config' in record else {}
  row = {'run': os.path.basename(run_dir), 'overrides': {**experiment, **record['overrides']},
         'status': 'not started', 'step': None, 'wall': '', 'eval_step': None,
         **{PAPER + score: value for score, value in record.get('published', {}).items()}}
  if not record['attempts'] and not record.get('launched'):
    return row  # e.g. a --dry_run's task: its workdir holds nothing yet
  # A local run's workdir is its folder, wherever the sweep folder has moved since.
  config, metrics, evaluations = spec.read_workdir(
      record['workdir'] if '://' in record['workdir'] else run_dir)
  step = metrics[-1]['step'] if metrics else None
  # The latest: the highest step, and of equal steps the one written last.
  latest = max(reversed(evaluations), key=lambda row: row.get('step', -1), default={})
  seconds = sum(attempt['seconds'] for attempt in record['attempts'])
  return {**row, 'status': _status(record, step, config), 'step': step,
          'wall': local.format_seconds(seconds) if seconds else '',
          'eval_step': latest.get('step'),
          **{score: latest[score] for score in SCORES if score in latest}}


def read_sweep(sweep_dir: str) -> list[dict[str, Any]]:
  """The rows of every run folder (one holding launch.json) in `sweep_dir`, by name."""
  if not os.path.isdir(sweep_dir):
    raise UserError(f'{sweep_dir} is not a folder; give a sweep\'s folder, e.g. '
                    'runs/sweeps/loss_study_cpu.')
  runs = sorted(name for name in os.listdir(sweep_dir)
                if os.path.exists(os.path.join(sweep_dir, name, spec.RECORD_FILE)))
  if not runs:
    raise UserError(f'{sweep_dir} holds no runs (folders with {spec.RECORD_FILE}); '
                    'python -m launch.sweep writes them.')
  return [read_run(os.path.join(sweep_dir, name)) for name in runs]


def swept_fields(rows: Sequence[dict[str, Any]]) -> list[str]:
  """The override fields whose values differ between runs, as the sweep orders them; seed last,
  as the repeats of each setting."""
  fields = list(dict.fromkeys(field for row in rows for field in row['overrides']))
  swept = [field for field in fields
           if len({repr(row['overrides'].get(field)) for row in rows}) > 1]
  return sorted(swept, key=lambda field: field == 'seed')


def _determines(rows: Sequence[dict[str, Any]], field: str, other: str) -> bool:
  """Whether each value of `field` comes with one value of `other` (loss=wasserstein with
  n_critic=5): a plot against `other` would then repeat the one against `field`."""
  seen = {}
  return all(seen.setdefault(repr(row['overrides'].get(field)), repr(row['overrides'].get(other)))
             == repr(row['overrides'].get(other)) for row in rows)


def _sort_key(value: Any) -> tuple[int, Any]:
  """Numbers in order, then everything else by its text."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return (0, value)
  return (1, str(value))


def _score_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
  """The scores any run has, each followed by its paper's where any run's paper published it
  (measured or not yet)."""
  published = [key[len(PAPER):] for row in rows for key in row if key.startswith(PAPER)]
  names = list(SCORES) + sorted(set(published) - set(SCORES))
  columns = []
  for score in names:
    if any(score in row for row in rows) or score in published:
      columns += [score] + ([PAPER + score] if score in published else [])
  return columns


def table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
  """(header, cells): the swept fields, status, step, wall time, and each score any run has,
  with its paper's beside it; rows in the order of the swept values (numbers by value)."""
  fields = swept_fields(rows)
  rows = sorted(rows, key=lambda row: [_sort_key(row['overrides'].get(field, ''))
                                       for field in fields])
  scores = _score_columns(rows)
  header = ['run', *fields, 'status', 'step', 'wall', 'eval_step', *scores]
  cells = [[row['run'], *(row['overrides'].get(field, '') for field in fields), row['status'],
            row['step'], row['wall'], row['eval_step'], *(row.get(score) for score in scores)]
           for row in rows]
  return header, cells


def _text(value: Any) -> str:
  if value is None:
    return '-'
  return f'{value:.4g}' if isinstance(value, float) else str(value)


def format_table(header: Sequence[str], cells: Sequence[Sequence[Any]]) -> str:
  """The table as aligned text columns."""
  texts = [list(header)] + [[_text(value) for value in row] for row in cells]
  widths = [max(len(row[i]) for row in texts) for i in range(len(header))]
  return '\n'.join('  '.join(text.ljust(width) for text, width in zip(row, widths)).rstrip()
                   for row in texts)


def write_csv(path: str, header: Sequence[str], cells: Sequence[Sequence[Any]]) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows([['' if value is None else value for value in row] for row in cells])


def plotted_fields(rows: Sequence[dict[str, Any]]) -> list[str]:
  """The swept fields to plot against: not seed (the spread) nor one that an earlier field
  determines; seed alone if nothing else varies."""
  fields = []
  for field in swept_fields(rows):
    if field != 'seed' and not any(_determines(rows, kept, field) for kept in fields):
      fields.append(field)
  return fields or ['seed']


def plot(path: str, rows: Sequence[dict[str, Any]], title: str) -> bool:
  """Plots each score against each of `plotted_fields`, every run a dot (the seeds of a
  setting show as its spread); False if no run has a score yet."""
  scores = [score for score in PLOTTED if any(score in row for row in rows)]
  if not scores:
    return False
  import matplotlib  # pylint: disable=import-outside-toplevel; slow, and only for the plot
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

  fields = plotted_fields(rows)
  figure, axes = plt.subplots(len(scores), len(fields), squeeze=False,
                              figsize=(4 * len(fields), 3 * len(scores)))
  for i, score in enumerate(scores):
    for j, field in enumerate(fields):
      ax = axes[i][j]
      values = sorted({row['overrides'].get(field, '-') for row in rows}, key=_sort_key)
      groups = [[row[score] for row in rows
                 if score in row and row['overrides'].get(field, '-') == value]
                for value in values]
      for x, group in enumerate(groups):
        if group:
          ax.scatter([x] * len(group), group, color='C0', alpha=0.6)
          ax.plot([x - 0.25, x + 0.25], [sum(group) / len(group)] * 2, color='C1')  # the mean
      ax.set_xticks(range(len(values)), [_text(value) for value in values],
                    rotation=30 if len(values) > 3 else 0)
      ax.set_xlabel(field)
      ax.set_ylabel(score)
  figure.suptitle(f'{title}\n(dots: runs; bars: means)', fontsize=10)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)
  return True


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('Give one sweep folder: python -m launch.summary runs/sweeps/NAME')
  sweep_dir = argv[1].rstrip('/')
  rows = read_sweep(sweep_dir)
  header, cells = table(rows)
  print(format_table(header[1:], [row[1:] for row in cells]))  # the overrides name the run
  csv_path = FLAGS.csv or os.path.join(sweep_dir, 'summary.csv')
  png_path = FLAGS.png or os.path.join(sweep_dir, 'summary.png')
  write_csv(csv_path, header, cells)
  wrote = [csv_path] + ([png_path] if plot(png_path, rows, os.path.basename(sweep_dir)) else [])
  print(f'Wrote {" and ".join(wrote)}.')


if __name__ == '__main__':
  cli.run(main)

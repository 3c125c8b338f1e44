r"""Sample quality at equal wall clock: `python benchmarks/quality.py table FILE-quality.jsonl`.

benchmarks/quality_compare.sh trains gan_jax and then its PyTorch peer (PEER=dcgan:
benchmarks/pytorch_dcgan28.py, framework 'pytorch'; PEER=mimicry: benchmarks/mimicry_sngan.py,
framework 'mimicry') for the same minutes, each alone, into one folder OUT, and then runs

  python benchmarks/quality.py score RESULTS OUT FRAMEWORK MINUTES [MARK ...]

for each framework: it scores what the run had made at each MARK and at the end of its
MINUTES with `python -m gan_jax.evaluate` and appends one JSON line per (framework, minutes)
to RESULTS: the metrics, the steps and minutes of training there, the run's steps and
images/s, the load before and after it, and the conditions of the comparison's meta line
(CPU, cores, versions). The gan_jax run is its workdir OUT/gan_jax, whose timed checkpoints
(config.checkpoint_every_minutes) hold the marks; a peer's is its JSON line in
OUT/FRAMEWORK.out, whose snapshots are sample files. `table` prints the markdown table of the
last comparison in a file (`--all`: every comparison).

Standard library only, but for reading a gan_jax workdir's checkpoints (gan_jax itself).
"""
import argparse
import json
import os
import re
import subprocess
import sys

import table  # beside this file: its folder is on sys.path

# In the order they train, and in the table: gan_jax, then its peer, PyTorch's DCGAN-28
# (pytorch_dcgan28.py) or Mimicry's SNGAN-32 (mimicry_sngan.py).
FRAMEWORKS = ('gan_jax', 'pytorch', 'mimicry')
EVALUATE_FIELDS = ('step', 'dataset', 'num_samples', 'fid', 'kid', 'kid_std', 'precision',
                   'recall', 'inception_score', 'classes_covered', 'feature_net', 'floor')
MINUTE = 60.0


def training_rate(metrics_lines: list[dict]) -> float | None:
  """Images/s of the training loop over a new run's metrics.jsonl lines; None if none logged.

  Each logged rate covers the steps since the previous log, the first one those since step 1
  (the compiled first step), without the time spent on sample grids and checkpoints
  (gan_jax.writers.Progress): their steps over their seconds.
  """
  steps = seconds = 0.0
  images_per_step = None
  previous = 1
  for line in metrics_lines:
    if line.get('steps_per_sec') and line['step'] > previous:
      steps += line['step'] - previous
      seconds += (line['step'] - previous) / line['steps_per_sec']
      images_per_step = line['images_per_sec'] / line['steps_per_sec']
    if 'step' in line:
      previous = line['step']
  return steps * images_per_step / seconds if seconds else None


def gan_jax_run(workdir: str, marks: list[float]) -> dict:
  """A gan_jax workdir as the peers report their runs: steps, minutes, images/s, snapshots.

  The snapshot at a mark is the first checkpoint saved at or after it (timed checkpoints come
  at the first step past each period); a run that ended before a mark (at num_steps) has only
  its last checkpoint to show there.
  """
  # Imported here only: `table` needs neither, and jax takes seconds to import.
  import orbax.checkpoint as ocp
  from gan_jax import checkpoints
  manager = checkpoints.create_manager(workdir)
  trained = {step: manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore())).meta['train_seconds'] for step in manager.all_steps()}
  if not trained:
    sys.exit(f'Error: {workdir} has no checkpoints.')
  last = max(trained)

  def at(mark: float) -> dict:
    step = min((s for s in trained if trained[s] >= mark * MINUTE), default=last)
    return {'minutes': mark, 'steps': step, 'train_minutes': trained[step] / MINUTE}

  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  with open(metrics_path) as f:
    metrics_lines = [json.loads(line) for line in f if line.strip()]
  return {'framework': 'gan_jax', 'steps': last, 'minutes': trained[last] / MINUTE,
          'images_per_second': training_rate(metrics_lines),
          'snapshots': [at(mark) for mark in marks], 'output': workdir}


def _load(uptime: str) -> list[float] | None:
  """[1, 5, 15]-minute load averages of an `uptime` line."""
  match = re.search(r'load averages?:\s*([\d.]+),?\s+([\d.]+),?\s+([\d.]+)', uptime)
  return [float(value) for value in match.groups()] if match else None


def _evaluate(framework: str, run: dict, snapshot: dict, num_samples: int) -> dict:
  """`python -m gan_jax.evaluate`'s JSON line for one snapshot of a run."""
  if framework == 'gan_jax':
    target = ['--workdir', run['output'], '--step', str(snapshot['steps'])]
  else:
    target = ['--samples', snapshot['output'], '--dataset', 'fashion_mnist']
  print(f'quality.py: scoring {framework} at {snapshot["minutes"]:g} min', file=sys.stderr)
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.evaluate', '--num_samples', str(num_samples), *target],
      stdout=subprocess.PIPE, text=True, check=False)
  if result.returncode:
    sys.exit(f'Error: gan_jax.evaluate failed on {framework} at {snapshot["minutes"]:g} min '
             f'(exit {result.returncode}).')
  return json.loads(result.stdout.strip().splitlines()[-1])


def snapshots_and_end(run: dict, minutes: float) -> list[dict]:
  """The run's snapshots, then its end as the snapshot at `minutes`, the whole budget."""
  return run['snapshots'] + [{'minutes': minutes, 'steps': run['steps'],
                              'train_minutes': run['minutes'], 'output': run['output']}]


def make_records(framework: str, run: dict, uptimes: list[str], meta: dict, minutes: float,
                 scores: list[dict]) -> list[dict]:
  """One record per snapshots_and_end(run), `scores` being their evaluations in order."""
  conditions = {key: value for key, value in meta.items() if key != 'meta'}
  return [{
      **conditions,
      'framework': framework,
      'model': run.get('model') or meta.get('config'),
      'minutes': snapshot['minutes'],
      'steps': snapshot['steps'],
      'train_minutes': snapshot['train_minutes'],
      # gan_jax stops at num_steps, maybe before the mark: its last checkpoint stands there.
      # (Less 10 ms for rounding: a run stopped by its budget ends at or after it.)
      'ended_before_mark': snapshot['train_minutes'] * MINUTE < snapshot['minutes'] * MINUTE - 0.01,
      'run_steps': run['steps'],
      'run_minutes': run['minutes'],
      'images_per_second': run['images_per_second'],
      **{key: run[key] for key in ('batch_size', 'threads', 'device') if key in run},
      'uptime_before': uptimes[0], 'uptime_after': uptimes[1],
      'load_before': _load(uptimes[0]), 'load_after': _load(uptimes[1]),
      'output': snapshot.get('output') or run['output'],
      **{key: score[key] for key in EVALUATE_FIELDS if key in score},
  } for snapshot, score in zip(snapshots_and_end(run, minutes), scores, strict=True)]


def score(results: str, out: str, framework: str, minutes: float, marks: list[float],
          num_samples: int) -> None:
  """Evaluates one run of OUT at each mark and its end; appends the records to `results`."""
  if framework == 'gan_jax':
    run = gan_jax_run(os.path.join(out, 'gan_jax'), marks)
  else:
    with open(os.path.join(out, f'{framework}.out')) as f:
      run = json.loads(f.read().strip().splitlines()[-1])
  with open(os.path.join(out, f'{framework}.uptime')) as f:
    uptimes = [line.strip() for line in f if line.strip()]
  runs = table.read_runs(results)
  meta = runs[-1][0] if runs else {}
  scores = [_evaluate(framework, run, snapshot, num_samples)
            for snapshot in snapshots_and_end(run, minutes)]
  with open(results, 'a') as f:
    for record in make_records(framework, run, uptimes, meta, minutes, scores):
      f.write(json.dumps(record) + '\n')


def _number(value: float | None, digits: int) -> str:
  return '-' if value is None else f'{value:,.{digits}f}'


def _minutes(record: dict) -> str:
  """The mark, and when the snapshot is not from it, the minutes of training it is from."""
  text = f'{record["minutes"]:g}'
  trained = record['train_minutes']
  if record.get('ended_before_mark'):
    return f'{text} (ended at {trained:.2g})'
  return text if trained <= 1.05 * record['minutes'] else f'{text} (at {trained:.2g})'


def _metric_cells(scores: dict) -> str:
  return ' | '.join([_number(scores.get('fid'), 1), _number(scores.get('kid'), 2),
                     _number(scores.get('precision'), 2), _number(scores.get('recall'), 2),
                     str(scores.get('classes_covered', '-'))])


def _conditions(name: str, record: dict, load_limit: float | None) -> str:
  """One line on a run: its steps, minutes and images/s, and the load before and after it."""
  rate = record.get('images_per_second')
  before, after = (record.get(key) or [None] for key in ('load_before', 'load_after'))
  line = (f'- {name} ({record.get("model") or "?"}): {record["run_steps"]:,} steps in '
          f'{record["run_minutes"]:.1f} min, {"-" if rate is None else table.format_rate(rate)} '
          f'images/s; 1-minute load {_number(before[0], 2)} before, {_number(after[0], 2)} after')
  if load_limit is not None and before[0] is not None and before[0] > load_limit:
    line += f' (NOT QUIET: above {load_limit:g})'
  return line


def make_table(meta: dict, records: list[dict], source: str = '') -> str:
  """The markdown table of one comparison: a row per (minutes, framework), then its conditions."""
  if not records:
    return 'No quality results.'
  order = {name: i for i, name in enumerate(FRAMEWORKS)}
  records = sorted(records, key=lambda r: (r['minutes'], order.get(r['framework'], 99)))
  lines = [f'Sample quality at equal wall clock, {records[0].get("num_samples", 0):,} samples '
           f'each, scored by gan_jax.evaluate ({", ".join(table.describe(meta, records, source))})',
           '',
           '| framework | minutes | steps | FID ↓ | KID ↓ | precision ↑ | recall ↑ | classes ↑ |',
           '|---|---:|---:|---:|---:|---:|---:|---:|']
  lines += [f'| {r["framework"]} | {_minutes(r)} | {r["steps"]:,} | {_metric_cells(r)} |'
            for r in records]
  floor = next((r['floor'] for r in records if r.get('floor')), None)
  if floor:
    lines.append(f'| floor: {floor["num_samples"]:,} real train images |  |  | '
                 f'{_metric_cells(floor)} |')
  lines.append('')
  first_records = {}  # framework -> its first record, which holds the run's conditions
  for r in records:
    first_records.setdefault(r['framework'], r)
  lines += [_conditions(name, first_records[name], meta.get('load_limit'))
            for name in sorted(first_records, key=lambda n: order.get(n, 99))]
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  commands = parser.add_subparsers(dest='command', required=True)
  printer = commands.add_parser('table', help='Print the markdown table of a results file.')
  printer.add_argument('jsonl', help='A results file, e.g. benchmarks/results/DATE-quality.jsonl.')
  printer.add_argument('--all', action='store_true',
                       help='Every comparison in the file, not only the last.')
  scorer = commands.add_parser('score', help='Score one run of quality_compare.sh.')
  scorer.add_argument('results')
  scorer.add_argument('out')
  scorer.add_argument('framework', choices=FRAMEWORKS)
  scorer.add_argument('minutes', type=float)
  scorer.add_argument('marks', type=float, nargs='*')
  scorer.add_argument('--num_samples', type=int, default=10_000)
  args = parser.parse_args()
  if args.command == 'score':
    score(args.results, args.out, args.framework, args.minutes, args.marks, args.num_samples)
    return
  try:
    runs = table.read_runs(args.jsonl)
  except OSError as e:
    sys.exit(f'Error: cannot read {args.jsonl}: {e.strerror}')
  if not runs:
    sys.exit(f'Error: no quality results in {args.jsonl}')
  if args.all:
    print('\n\n'.join(make_table(meta, records, args.jsonl) for meta, records in runs))
  else:
    print(make_table(*runs[-1], args.jsonl))


if __name__ == '__main__':
  main()

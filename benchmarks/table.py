r"""Prints a markdown table of benchmark JSON lines: `python benchmarks/table.py FILE.jsonl`.

Reads the lines that benchmarks/compare.sh appends (those of `python -m gan_jax.benchmark`
and of its PyTorch peer, benchmarks/pytorch_dcgan.py or mimicry_sngan.py, one per run, plus
one {"meta": true, ...} line at the start of each compare.sh run, which names the config and
the peer for the title) and prints rows = (framework, variant or input), columns =
global batch sizes, cells = images/s, and a last column with each batch size's ratio to
PyTorch eager. A run that failed ({"failed": true, ...}) shows as "failed".

By default only the last compare.sh run in the file is shown (the lines after its last
meta line); `--all` merges every run, the later line winning for a cell.

`python benchmarks/table.py families FILE.jsonl [--baseline OLD.jsonl]` prints the table of
a benchmarks/families.sh run instead: one row per config (batch, n_critic, ms/step, images/s,
compile seconds), and with --baseline each config's ratio to an earlier run's.

Standard library only.
"""
import argparse
import json
import os
import sys

BASELINE = ('pytorch', 'eager')
# Rows in this order first; others follow in the order they first appear.
ROW_ORDER = [('gan_jax', 'synthetic'), ('gan_jax', 'real input'), ('gan_jax', 'synthetic bf16'),
             ('pytorch', 'eager'), ('pytorch', 'channels_last'), ('pytorch', 'bf16'),
             ('pytorch', 'bf16_channels_last'), ('pytorch', 'compile'), ('pytorch', 'fastest')]


def _framework(record: dict) -> str:
  # gan_jax.benchmark lines may lack the key; their config is an experiments/*.py path.
  if record.get('framework'):
    return record['framework']
  return 'pytorch' if str(record.get('config', '')).startswith('pytorch_dcgan') else 'gan_jax'


def _variant(record: dict) -> str:
  if record.get('variant'):
    return record['variant']
  config = str(record.get('config', ''))
  if config.startswith('pytorch_dcgan:'):
    return config.split(':', 1)[1]
  return 'synthetic' if record.get('synthetic') else 'real input'


def read_runs(path: str) -> list[tuple[dict, list[dict]]]:
  """Returns [(meta, records)], one per compare.sh run; lines before any meta: meta {}."""
  runs = [({}, [])]
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        print(f'{path}:{number}: not JSON, skipped', file=sys.stderr)
        continue
      if not isinstance(record, dict):
        print(f'{path}:{number}: not a JSON object, skipped', file=sys.stderr)
      elif record.get('meta'):
        runs.append((record, []))
      else:
        runs[-1][1].append(record)
  return [run for run in runs if run[0] or run[1]]


def describe(meta: dict, records: list[dict], source: str = '') -> list[str]:
  """Date, device, cores, ISA and versions of a run, from its meta line where there is one."""
  kinds = meta.get('device_kind') or ' / '.join(sorted(
      {str(r['device_kind']) for r in records if r.get('device_kind')})) or 'unknown device'
  date = meta.get('date') or os.path.basename(source)[:10] or 'undated'
  parts = [date, kinds]
  if meta.get('cpu_count'):
    parts.append(f'{meta["cpu_count"]} cores')
  # compare.sh's ISA=avx2 runs an AVX-512 CPU as an AVX2 one: the device alone does not say.
  isa = meta.get('isa') or ' / '.join(sorted({str(r['isa']) for r in records if r.get('isa')}))
  if isa:
    parts.append(f'ISA {isa}')
  for key, name in (('jax_version', 'jax'), ('torch_version', 'torch')):
    if meta.get(key):
      parts.append(f'{name} {meta[key]}')
  return parts


def _subject(meta: dict, records: list[dict]) -> str:
  """What a compare.sh run timed: 'gan_jax CONFIG vs PyTorch SCRIPT', from its meta line, or
  where that names neither (runs before compare.sh's PEER), from the result lines' configs."""
  configs = [meta['config']] if meta.get('config') else sorted(
      {str(r['config']) for r in records if r.get('config') and _framework(r) == 'gan_jax'})
  peers = [os.path.basename(meta['peer_script'])] if meta.get('peer_script') else sorted(
      {str(r['config']).split(':')[0] + '.py' for r in records
       if r.get('config') and _framework(r) == 'pytorch'})
  sides = [f'{name} {" / ".join(names)}' for name, names in (('gan_jax', configs),
                                                             ('PyTorch', peers)) if names]
  return ' vs '.join(sides) or 'gan_jax vs PyTorch'


def format_rate(value: float) -> str:
  return f'{value:,.1f}' if value < 100 else f'{value:,.0f}'


def make_table(meta: dict, records: list[dict], source: str = '') -> str:
  """The markdown table (with a header line and failure notes) for one set of records."""
  cells = {}  # (framework, variant) -> {batch: record}; a later record wins.
  for record in records:
    row = (_framework(record), _variant(record))
    cells.setdefault(row, {})[int(record.get('global_batch', 0))] = record
  if not cells:
    return 'No benchmark results.'
  rows = [row for row in ROW_ORDER if row in cells]
  rows += [row for row in cells if row not in rows]
  batches = sorted({batch for by_batch in cells.values() for batch in by_batch})

  def rate(row, batch):
    record = cells.get(row, {}).get(batch)
    if record is None or record.get('failed') or record.get('images_per_second') is None:
      return None
    return float(record['images_per_second'])

  parts = describe(meta, records, source)
  if meta.get('steps'):
    parts.append(f'{meta["steps"]} timed steps')
  lines = [f'Training throughput, images/s: {_subject(meta, records)} ({", ".join(parts)})', '']

  header = ['framework', 'variant / input'] + [f'batch {b}' for b in batches]
  header.append('vs PyTorch eager (' + ' / '.join(str(b) for b in batches) + ')')
  lines.append('| ' + ' | '.join(header) + ' |')
  lines.append('|' + '|'.join(['---'] * 2 + ['---:'] * (len(batches) + 1)) + '|')
  failures = []
  for row in rows:
    cols = list(row)
    ratios = []
    for batch in batches:
      record = cells[row].get(batch)
      value = rate(row, batch)
      if record is None:
        cols.append('-')
      elif value is None:
        cols.append('failed')
        failures.append(f'{row[0]} {row[1]} at batch {batch}: '
                        f'{record.get("error") or "no result"}')
      else:
        cols.append(format_rate(value))
      baseline = rate(BASELINE, batch)
      ratios.append(f'{value / baseline:.2f}x' if value is not None and baseline else '-')
    cols.append(' / '.join(ratios))
    lines.append('| ' + ' | '.join(cols) + ' |')
  if failures:
    lines.append('')
    lines.extend(f'- failed: {failure}' for failure in failures)
  return '\n'.join(lines)


def _family(record: dict) -> str:
  """A families.sh row's name: its config (run_one's failed lines carry it as the variant)."""
  return str(record.get('config') or record.get('variant') or '?').removeprefix('experiments/')


def _measured(record: dict | None, key: str) -> float | None:
  if record is None or record.get('failed') or record.get(key) is None:
    return None
  return float(record[key])


def families_table(meta: dict, records: list[dict], source: str = '',
                   baseline: tuple[dict, list[dict]] | None = None,
                   tolerance: float = 0.1) -> str:
  """The markdown table of a benchmarks/families.sh run: one row per config, and with
  `baseline` (an earlier run's meta and records) each config's ratio to it."""
  rows = {}  # config -> record; a later record wins.
  for record in records:
    rows[_family(record)] = record
  if not rows:
    return 'No benchmark results.'
  parts = describe(meta, records, source)
  if meta.get('steps'):
    parts.append(f'{meta["steps"]} timed step{"s" if meta["steps"] != 1 else ""}')
  if meta.get('benchmark_args'):
    parts.append(f'args {meta["benchmark_args"]}')
  lines = [f"Every family's :cpu preset, gan_jax.benchmark --synthetic ({', '.join(parts)})", '']
  header = ['config', 'batch', 'n_critic', 'ms/step', 'images/s', 'compile s']
  old = {}
  if baseline is not None:
    old = {_family(record): record for record in baseline[1]}
    header += ['baseline ms/step', 'ms/step ratio', 'compile ratio']
  lines.append('| ' + ' | '.join(header) + ' |')
  lines.append('|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|')

  def ratio(new, base):
    return f'{new / base:.2f}x' if new is not None and base else '-'

  failures, slower = [], []
  for name, record in rows.items():
    ms = _measured(record, 'ms_per_step')
    cols = [name, str(record.get('global_batch') or '-'), str(record.get('n_critic', '-'))]
    if ms is None:
      cols += ['failed', '-', '-']
      failures.append(f'{name}: {record.get("error") or "no result"}')
    else:
      cols += [format_rate(ms), format_rate(float(record['images_per_second'])),
               f'{float(record["compile_seconds"]):.1f}']
    if baseline is not None:
      old_ms = _measured(old.get(name), 'ms_per_step')
      cols += [format_rate(old_ms) if old_ms is not None else '-', ratio(ms, old_ms),
               ratio(_measured(record, 'compile_seconds'),
                     _measured(old.get(name), 'compile_seconds'))]
      if ms is not None and old_ms and ms / old_ms > 1 + tolerance:
        slower.append(f'{name} ({ms / old_ms:.2f}x)')
    lines.append('| ' + ' | '.join(cols) + ' |')

  notes = [f'- {name.removeprefix("experiments/")}: {note}'
           for name, note in (meta.get('notes') or {}).items()
           if name.removeprefix('experiments/') in rows]
  if baseline is not None:
    notes.append(f'- ratios: this run over the baseline ({", ".join(describe(*baseline))}); '
                 'above 1 is slower')
    differ = [key for key in ('device_kind', 'cpu_count', 'isa')
              if meta.get(key) != baseline[0].get(key)]
    if differ:
      notes.append(f'- the baseline differs in {", ".join(differ)}: the ratios compare '
                   'machines or settings, not only code')
    missing = [name for name in old if name not in rows]
    if missing:
      notes.append(f'- in the baseline only: {", ".join(missing)}')
    if slower:
      notes.append(f'- slower than the baseline by more than {tolerance:.0%}: '
                   + ', '.join(slower))
  notes += [f'- failed: {failure}' for failure in failures]
  if notes:
    lines += [''] + notes
  return '\n'.join(lines)


def _last_run(path: str) -> tuple[dict, list[dict]]:
  try:
    runs = read_runs(path)
  except OSError as e:
    sys.exit(f'Error: cannot read {path}: {e.strerror}')
  if not runs:
    sys.exit(f'Error: no benchmark results in {path}')
  return runs[-1]


def families_main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(
      prog='table.py families',
      description="The table of a benchmarks/families.sh run (the file's last run).")
  parser.add_argument('jsonl', help='A families results file, e.g. '
                      'benchmarks/results/DATE-HOST-families.jsonl.')
  parser.add_argument('--baseline', help='An earlier families results file (its last run): '
                      "adds each config's ratio to it.")
  parser.add_argument('--tolerance', type=float, default=0.1,
                      help='List the configs whose ms/step exceeds the baseline\'s by more '
                      'than this fraction [0.1, about a shared machine\'s run-to-run noise].')
  args = parser.parse_args(argv)
  meta, records = _last_run(args.jsonl)
  baseline = _last_run(args.baseline) if args.baseline else None
  print(families_table(meta, records, args.jsonl, baseline, args.tolerance))


def main() -> None:
  if sys.argv[1:2] == ['families']:
    families_main(sys.argv[2:])
    return
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('jsonl', help='A results file, e.g. benchmarks/results/DATE-HOST.jsonl.')
  parser.add_argument('--all', action='store_true',
                      help='Merge every run in the file, not only the last.')
  args = parser.parse_args()
  try:
    runs = read_runs(args.jsonl)
  except OSError as e:
    sys.exit(f'Error: cannot read {args.jsonl}: {e.strerror}')
  if not runs:
    sys.exit(f'Error: no benchmark results in {args.jsonl}')
  if args.all:
    meta = next((m for m, _ in reversed(runs) if m), {})
    records = [record for _, rs in runs for record in rs]
  else:
    meta, records = runs[-1]
  print(make_table(meta, records, args.jsonl))


if __name__ == '__main__':
  main()

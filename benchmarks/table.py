r"""Prints a markdown table of benchmark JSON lines: `python benchmarks/table.py FILE.jsonl`.

Reads the lines that benchmarks/compare.sh appends (those of `python -m gan_jax.benchmark`
and of benchmarks/pytorch_dcgan.py, one per run, plus one {"meta": true, ...} line at the
start of each compare.sh run) and prints rows = (framework, variant or input), columns =
global batch sizes, cells = images/s, and a last column with each batch size's ratio to
PyTorch eager. A run that failed ({"failed": true, ...}) shows as "failed".

By default only the last compare.sh run in the file is shown (the lines after its last
meta line); `--all` merges every run, the later line winning for a cell.

Standard library only.
"""
import argparse
import json
import os
import sys

BASELINE = ('pytorch', 'eager')
# Rows in this order first; others follow in the order they first appear.
ROW_ORDER = [('gan_jax', 'synthetic'), ('gan_jax', 'real input'), ('pytorch', 'eager'),
             ('pytorch', 'channels_last'), ('pytorch', 'bf16'), ('pytorch', 'compile'),
             ('pytorch', 'fastest')]


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
  lines = [f'DCGAN 64x64 training throughput, images/s ({", ".join(parts)})', '']

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


def main() -> None:
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

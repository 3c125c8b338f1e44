"""benchmarks/: compare.sh's result lines, PyTorch's DCGAN-28 snapshots and the quality table."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

# One xdist worker runs this module's tests: it builds the module's `torch_python` once.
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = os.path.join(os.path.dirname(__file__), '..')
BENCHMARKS = os.path.join(ROOT, 'benchmarks')


def _torch_python() -> str | None:
  """A Python that imports torch: compare.sh's virtual environment, else this one, else None."""
  venv = os.environ.get('TORCH_VENV') or os.path.expanduser('~/.venvs/gan_jax_torch')
  for python in (os.path.join(venv, 'bin', 'python'), sys.executable):
    if os.path.exists(python) and subprocess.run(
        [python, '-c', 'import torch'], capture_output=True, check=False).returncode == 0:
      return python
  return None


@pytest.fixture(scope='module')
def torch_python():
  python = _torch_python()
  if python is None:
    pytest.skip('no Python with torch (benchmarks/compare.sh makes one)')
  return python


ISA_VARIABLES = ('XLA_FLAGS', 'ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA')


# A stand-in for compare.sh's PyTorch: it passes for torch, and its result line says which ATen
# and oneDNN ISA caps it saw.
FAKE_TORCH_PYTHON = """#!/bin/sh
case "$*" in
  *__version__*) echo 0.0+fake ;;
  *'import torch'*) ;;
  *) printf '{"global_batch": 4, "images_per_second": 2.0, "seen": "%s %s"}\\n' \\
       "$ATEN_CPU_CAPABILITY" "$ONEDNN_MAX_CPU_ISA" ;;
esac
"""


def _compare(tmp_path, **env):
  """Runs compare.sh at batch 4 with the fake PyTorch: its meta line, result lines, table."""
  python = tmp_path / 'torch_venv' / 'bin' / 'python'
  python.parent.mkdir(parents=True)
  python.write_text(FAKE_TORCH_PYTHON)
  python.chmod(0o755)
  results = tmp_path / 'results.jsonl'
  env = {**{k: v for k, v in os.environ.items() if k not in ISA_VARIABLES},
         'PYTHON': sys.executable, 'TORCH_VENV': str(tmp_path / 'torch_venv'),
         'RESULTS': str(results), 'STEPS': '1', 'WARMUP': '0', **env}
  result = subprocess.run(['bash', os.path.join(BENCHMARKS, 'compare.sh'), '4'], env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  meta, *lines = [json.loads(line) for line in results.read_text().splitlines()]
  return meta, lines, result.stdout


def test_compare_pins_both_frameworks_to_avx2_and_records_it_in_every_line(tmp_path):
  meta, lines, table = _compare(tmp_path, ISA='avx2', JAX_INPUTS='synthetic',
                                CONFIG='experiments/toy_ring.py:smoke')
  assert meta['isa'] == 'avx2'
  # bf16 and fastest are left out as on an AVX2 CPU, whatever this one has.
  assert [(line['framework'], line['variant']) for line in lines] == [
      ('gan_jax', 'synthetic'), ('pytorch', 'eager'), ('pytorch', 'channels_last'),
      ('pytorch', 'compile')]
  assert lines[0]['images_per_second'] > 0
  assert all(line['seen'] == 'avx2 AVX2' for line in lines[1:])
  with open('/proc/cpuinfo') as f:
    cpu = {key.strip(): value.strip() for key, _, value in (l.partition(':') for l in f)}
  for line in lines:
    assert line['cpu_model'] == cpu.get('model name', '')
    assert set(line['cpu_flags']) <= set(cpu.get('flags', '').split())
    assert line['isa'] == 'avx2'
    assert line['isa_env'] == {'XLA_FLAGS': '--xla_cpu_max_isa=AVX2',
                               'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2'}
  assert ', ISA avx2, ' in table.splitlines()[0]


def test_compare_runs_on_the_cpus_own_isa_by_default(tmp_path):
  meta, [line], table = _compare(tmp_path, JAX_INPUTS='', VARIANTS='eager')
  assert meta['isa'] == line['isa'] == 'native'
  assert line['isa_env'] == {} and line['seen'] == ' '
  assert ', ISA native, ' in table.splitlines()[0]


def test_compare_rejects_an_unknown_isa():
  result = subprocess.run(['bash', os.path.join(BENCHMARKS, 'compare.sh')],
                          env={**os.environ, 'ISA': 'avx512'}, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 1
  assert "unknown ISA 'avx512' (native or avx2)" in result.stderr


def test_pytorch_dcgan28_writes_snapshots_like_its_final_samples(torch_python, tiny_fashion,
                                                                 tmp_path):
  output = tmp_path / 'run' / 'samples.npy'
  result = subprocess.run(
      [torch_python, os.path.join(BENCHMARKS, 'pytorch_dcgan28.py'), '--minutes=0.05',
       '--snapshot_minutes=0.02', f'--output={output}', f'--data_dir={tiny_fashion[0]}',
       '--num_samples=100', '--sample_batch_size=64', '--batch_size=8', '--device=cpu',
       '--threads=1'], capture_output=True, text=True, check=True)
  line = json.loads(result.stdout.strip().splitlines()[-1])
  [snapshot] = line['snapshots']
  assert snapshot['output'] == str(tmp_path / 'run' / 'samples_0.02min.npy')
  assert snapshot['minutes'] == 0.02 and snapshot['train_minutes'] >= 0.02
  assert 0 <= snapshot['steps'] <= line['steps'] and line['minutes'] >= 0.05
  assert line['snapshot_seconds'] > 0
  final, early = np.load(output), np.load(snapshot['output'])
  for samples in (final, early):
    assert samples.shape == (100, 28, 28, 1) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 1 and samples.std() > 0
  # The same latents, sampled the same way: only the steps in between tell them apart.
  assert np.array_equal(final, early) == (snapshot['steps'] == line['steps'])


def test_pytorch_dcgan28_rejects_a_snapshot_past_the_budget(torch_python):
  result = subprocess.run(
      [torch_python, os.path.join(BENCHMARKS, 'pytorch_dcgan28.py'), '--minutes=1',
       '--snapshot_minutes=0.5,1'], capture_output=True, text=True, check=False)
  assert result.returncode == 2
  assert '--snapshot_minutes must be below --minutes=1; got 1' in result.stderr


def test_gan_jax_training_rate_weighs_each_logged_rate_by_its_steps(monkeypatch):
  monkeypatch.syspath_prepend(BENCHMARKS)
  import quality  # benchmarks/ is a folder of scripts, not a package
  lines = [{'step': 501, 'steps_per_sec': 10.0, 'images_per_sec': 320.0},
           {'step': 1001, 'steps_per_sec': 20.0, 'images_per_sec': 640.0, 'd_loss': 1.0}]
  # 500 steps in 50 s (from step 1, after compilation), then 500 in 25 s: 1000 / 75 steps/s.
  assert quality.training_rate(lines) == pytest.approx(32 * 1000 / 75)
  assert quality.training_rate([{'step': 1, 'd_loss': 1.0}]) is None


def _record(framework, minutes, steps, fid, **more):
  base = {'framework': framework, 'minutes': minutes, 'steps': steps, 'train_minutes': minutes,
          'fid': fid, 'kid': fid / 40, 'precision': 0.5, 'recall': 0.25, 'classes_covered': 10,
          'num_samples': 10_000, 'floor': {'num_samples': 10_000, 'fid': 1.01, 'kid': -0.005,
                                            'precision': 0.83, 'recall': 0.82,
                                            'classes_covered': 10}}
  return {**base, **more}


def test_quality_table_prints_the_last_comparison(tmp_path):
  gan_jax = {'model': 'experiments/ns_gan.py:cpu', 'run_steps': 12_000, 'run_minutes': 9.14,
             'images_per_second': 704.2, 'load_before': [0.02, 0.1, 0.1],
             'load_after': [1.91, 1.2, 0.5]}
  pytorch = {'model': 'dcgan28', 'run_steps': 3_913, 'run_minutes': 15.0,
             'images_per_second': 279.4, 'load_before': [0.8, 0.9, 0.6],
             'load_after': [2.0, 1.5, 0.9]}
  lines = [
      {'meta': True, 'date': '2026-11-20T10:00:00'},
      _record('pytorch', 15, 522, 434.7, **pytorch),  # an earlier comparison: not shown
      {'meta': True, 'date': '2026-12-01T10:00:00', 'device_kind': 'cpu (AMD EPYC)',
       'cpu_count': 2, 'jax_version': '0.10.2', 'torch_version': '2.13.0+cpu',
       'load_limit': 0.5},
      _record('pytorch', 15, 3_913, 101.94, **pytorch),
      _record('gan_jax', 15, 12_000, 129.3, ended_before_mark=True, **{**gan_jax,
              'train_minutes': 9.14}),
      _record('pytorch', 5, 1_304, 180.0, **pytorch),
      _record('gan_jax', 5, 6_950, 122.9, **gan_jax),
  ]
  path = tmp_path / 'quality.jsonl'
  path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
  output = subprocess.run([sys.executable, os.path.join(BENCHMARKS, 'quality.py'), 'table',
                           str(path)], capture_output=True, text=True, check=True).stdout
  assert output.splitlines()[0] == (
      'Sample quality at equal wall clock, 10,000 samples each, scored by gan_jax.evaluate '
      '(2026-12-01T10:00:00, cpu (AMD EPYC), 2 cores, jax 0.10.2, torch 2.13.0+cpu)')
  assert [line for line in output.splitlines() if line.startswith(('|', '-'))] == [
      '| framework | minutes | steps | FID ↓ | KID ↓ | precision ↑ | recall ↑ | classes ↑ |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      '| gan_jax | 5 | 6,950 | 122.9 | 3.07 | 0.50 | 0.25 | 10 |',
      '| pytorch | 5 | 1,304 | 180.0 | 4.50 | 0.50 | 0.25 | 10 |',
      '| gan_jax | 15 (ended at 9.1) | 12,000 | 129.3 | 3.23 | 0.50 | 0.25 | 10 |',
      '| pytorch | 15 | 3,913 | 101.9 | 2.55 | 0.50 | 0.25 | 10 |',
      '| floor: 10,000 real train images |  |  | 1.0 | -0.01 | 0.83 | 0.82 | 10 |',
      '- gan_jax (experiments/ns_gan.py:cpu): 12,000 steps in 9.1 min, 704 images/s; '
      '1-minute load 0.02 before, 1.91 after',
      '- pytorch (dcgan28): 3,913 steps in 15.0 min, 279 images/s; 1-minute load 0.80 before, '
      '2.00 after (NOT QUIET: above 0.5)',
  ]

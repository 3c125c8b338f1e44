"""benchmarks/: compare.sh's result lines, the PyTorch peers (DCGAN-28's snapshots, Mimicry's
SNGAN step and training) and the quality table."""
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


# A stand-in for compare.sh's PyTorch: it passes for torch (and torch_mimicry), and its result
# line says which ATen and oneDNN ISA caps it saw and what it was asked to run.
FAKE_TORCH_PYTHON = """#!/bin/sh
case "$*" in
  *__version__*) echo 0.0+fake ;;
  *'import torch'*) ;;
  *) printf '{"global_batch": 4, "images_per_second": 2.0, "seen": "%s %s", "args": "%s"}\\n' \\
       "$ATEN_CPU_CAPABILITY" "$ONEDNN_MAX_CPU_ISA" "$*" ;;
esac
"""


def _compare(tmp_path, batches=('4',), **env):
  """Runs compare.sh at `batches` with the fake PyTorch: its meta line, result lines, table."""
  python = tmp_path / 'torch_venv' / 'bin' / 'python'
  python.parent.mkdir(parents=True)
  python.write_text(FAKE_TORCH_PYTHON)
  python.chmod(0o755)
  results = tmp_path / 'results.jsonl'
  env = {**{k: v for k, v in os.environ.items() if k not in ISA_VARIABLES},
         'PYTHON': sys.executable, 'TORCH_VENV': str(tmp_path / 'torch_venv'),
         'RESULTS': str(results), 'STEPS': '1', 'WARMUP': '0', **env}
  result = subprocess.run(['bash', os.path.join(BENCHMARKS, 'compare.sh'), *batches], env=env,
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


def _has_bf16_units() -> bool:
  with open('/proc/cpuinfo') as f:
    return bool({'avx512_bf16', 'amx_bf16'} & set(f.read().split()))


@pytest.mark.parametrize('isa', ['avx2', 'native'])
def test_compare_mimicry_times_resnet_sngan_against_mimicry_at_batch_64(tmp_path, isa):
  meta, lines, table = _compare(tmp_path, batches=(), PEER='mimicry', ISA=isa, JAX_INPUTS='')
  assert (meta['peer'], meta['config']) == ('mimicry', 'experiments/resnet_sngan.py')
  assert meta['peer_script'] == 'benchmarks/mimicry_sngan.py'
  # bf16 where the CPU has bf16 units and no AVX2 pin; channels_last on request only.
  variants = ['eager', 'bf16'] if isa == 'native' and _has_bf16_units() else ['eager']
  assert [(line['framework'], line['variant']) for line in lines] == [
      ('pytorch', variant) for variant in variants]
  for line, variant in zip(lines, variants):
    assert line['args'] == (f'benchmarks/mimicry_sngan.py speed --variant {variant} '
                            '--batch_size 64 --steps 1 --warmup 0 --device cpu')
  assert table.splitlines()[0].startswith(
      'Training throughput, images/s: gan_jax experiments/resnet_sngan.py vs PyTorch '
      'mimicry_sngan.py (')


def test_compare_runs_gan_jax_in_bfloat16_as_its_own_row(tmp_path):
  meta, [line], table = _compare(tmp_path, JAX_INPUTS='bf16', VARIANTS='', PEER='mimicry',
                                 CONFIG='experiments/toy_ring.py:smoke')
  assert meta['config'] == 'experiments/toy_ring.py:smoke'
  assert (line['framework'], line['variant']) == ('gan_jax', 'synthetic bf16')
  assert line['images_per_second'] > 0 and line['synthetic']
  assert '| gan_jax | synthetic bf16 | ' in table


def test_compare_names_dcgan64_and_pytorch_dcgan_by_default(tmp_path):
  meta, [line], table = _compare(tmp_path, JAX_INPUTS='', VARIANTS='eager')
  assert (meta['peer'], meta['config']) == ('dcgan', 'experiments/dcgan64.py')
  assert line['args'].startswith('benchmarks/pytorch_dcgan.py --variant eager --batch_size 4 ')
  assert table.splitlines()[0].startswith(
      'Training throughput, images/s: gan_jax experiments/dcgan64.py vs PyTorch '
      'pytorch_dcgan.py (')


@pytest.mark.parametrize('script', ['compare.sh', 'quality_compare.sh'])
def test_the_comparisons_reject_an_unknown_peer(script, tmp_path):
  result = subprocess.run(['bash', os.path.join(BENCHMARKS, script)],
                          env={**os.environ, 'PEER': 'keras', 'OUT': str(tmp_path / 'out')},
                          capture_output=True, text=True, check=False)
  assert result.returncode == 1
  assert f"{script}: unknown PEER 'keras' (dcgan or mimicry)" in result.stderr


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


@pytest.fixture(scope='module')
def mimicry_python(torch_python):
  """A Python with torch and torch_mimicry (compare.sh PEER=mimicry installs it)."""
  found = subprocess.run([torch_python, '-c', 'import importlib.util, sys; '
                          'sys.exit(importlib.util.find_spec("torch_mimicry") is None)'],
                         check=False).returncode == 0
  if not found:
    pytest.skip('no torch_mimicry beside torch (benchmarks/compare.sh PEER=mimicry installs it)')
  return torch_python


def _run_mimicry_code(python, code: str) -> str:
  """Runs `code` with benchmarks/ on the path (mimicry_sngan imported); returns its stdout."""
  return subprocess.run([python, '-c', f'import sys; sys.path.insert(0, {BENCHMARKS!r})\n'
                         'import mimicry_sngan, torch\ntorch.set_num_threads(1)\n' + code],
                        capture_output=True, text=True, check=True).stdout


def test_mimicry_sngan_iteration_is_mimicrys_own_train_steps(mimicry_python):
  # Two iterations of 2 D updates and a G update, by Mimicry's netD.train_step and
  # netG.train_step as its Trainer calls them, and by make_iteration: the same weights, BN
  # statistics and spectral-norm vectors, bit for bit.
  output = _run_mimicry_code(mimicry_python, """
device = torch.device('cpu')
def build():
  torch.manual_seed(1)
  net_g, net_d = mimicry_sngan.build_networks(1, 8, 8, device)
  return net_g, net_d, mimicry_sngan.adam(net_g), mimicry_sngan.adam(net_d)
reals = [torch.rand(2, 1, 32, 32) * 2 - 1 for _ in range(4)]
class Log:
  def add_metric(self, *args, **kwargs):
    pass
net_g, net_d, opt_g, opt_d = build()
torch.manual_seed(7)
for real in reals:
  net_d.train_step(real_batch=(real, None), netG=net_g, optD=opt_d, log_data=Log(), device=device)
  if real is reals[1] or real is reals[3]:
    net_g.train_step(real_batch=(real, None), netD=net_d, optG=opt_g, log_data=Log(),
                     device=device)
ours = build()
batches = iter(reals)
iteration = mimicry_sngan.make_iteration(*ours, lambda: next(batches), 2, 2, device)
torch.manual_seed(7)
iteration(); iteration()
theirs = {**net_g.state_dict(), **{'d.' + k: v for k, v in net_d.state_dict().items()}}
mine = {**ours[0].state_dict(), **{'d.' + k: v for k, v in ours[1].state_dict().items()}}
assert theirs.keys() == mine.keys()
print(sorted(k for k in theirs if not torch.equal(theirs[k], mine[k])), len(theirs))
""")
  different, count = output.rsplit(' ', 1)
  assert different == '[]' and int(count) > 50


def test_mimicry_sngan_speed_prints_gan_jax_benchmarks_keys(mimicry_python):
  result = subprocess.run(
      [mimicry_python, os.path.join(BENCHMARKS, 'mimicry_sngan.py'), 'speed', '--batch_size=2',
       '--steps=2', '--warmup=0', '--ngf=8', '--ndf=8', '--device=cpu', '--threads=1'],
      capture_output=True, text=True, check=True)
  line = json.loads(result.stdout.strip().splitlines()[-1])
  assert (line['framework'], line['variant'], line['config']) == (
      'pytorch', 'eager', 'mimicry_sngan:eager')
  assert (line['global_batch'], line['n_critic'], line['ngf'], line['nc']) == (2, 5, 8, 1)
  # A fresh real batch per D update: batch * n_critic real images per iteration.
  assert line['images_per_second'] == pytest.approx(2 * 5 * 1000 / line['ms_per_step'])
  assert line['mimicry_version'] == '0.1.16' and line['threads'] == 1
  assert line['torch_version'] and line['synthetic'] and line['compile_seconds'] == 0


def test_mimicry_sngan_resizes_like_gan_jaxs_input_pipeline(mimicry_python, tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
  images[:5] = np.arange(28, dtype=np.uint8)[:, None] * 9  # smooth ramps, and extremes
  images[5], images[6] = 0, 255
  np.save(tmp_path / 'images.npy', images)
  _run_mimicry_code(mimicry_python, f"""
import numpy as np
np.save({str(tmp_path / 'resized.npy')!r},
        mimicry_sngan.resize_like_pillow(np.load({str(tmp_path / 'images.npy')!r}), 32))
""")
  from gan_jax.data.transform import fit_image  # pylint: disable=import-outside-toplevel
  expected = np.stack([fit_image(image[..., None], 32, 1)[..., 0] for image in images])
  resized = np.load(tmp_path / 'resized.npy')
  assert resized.dtype == np.uint8 and np.array_equal(resized, expected)


def test_mimicry_sngan_training_writes_snapshots_gan_jax_evaluates(mimicry_python, tiny_fashion,
                                                                 tiny_weights_dir, tmp_path):
  output = tmp_path / 'run' / 'samples.npy'
  result = subprocess.run(
      [mimicry_python, os.path.join(BENCHMARKS, 'mimicry_sngan.py'), 'train', '--minutes=0.04',
       '--snapshot_minutes=0.02', f'--output={output}', f'--data_dir={tiny_fashion[0]}',
       '--num_samples=12', '--batch_size=4', '--ngf=8', '--ndf=8', '--device=cpu',
       '--threads=1'], capture_output=True, text=True, check=True)
  line = json.loads(result.stdout.strip().splitlines()[-1])
  assert (line['framework'], line['model'], line['n_critic']) == ('pytorch', 'mimicry_sngan32', 5)
  [snapshot] = line['snapshots']
  assert snapshot['output'] == str(tmp_path / 'run' / 'samples_0.02min.npy')
  assert 0 <= snapshot['steps'] <= line['steps'] and line['minutes'] >= 0.04
  # 20 images in batches of 4, 5 per iteration: an epoch per iteration.
  assert line['epochs'] == line['steps']
  from gan_jax import evaluate  # pylint: disable=import-outside-toplevel
  final, early = (evaluate.read_samples(str(path)) for path in (output, snapshot['output']))
  for samples in (final, early):
    assert samples.shape == (12, 32, 32, 1) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 1 and samples.std() > 0
  # The same latents: only the steps in between tell them apart.
  assert np.array_equal(final, early) == (snapshot['steps'] == line['steps'])
  # Scored as quality.py scores them: real images fitted to 32x32 with 1 channel.
  config = evaluate.samples_config('fashion_mnist', early, *tiny_fashion)
  assert (config.data.image_size, config.data.channels) == (32, 1)
  scores = evaluate.evaluate_samples(early, config, options=evaluate.Options(
      feature_weights_dir=tiny_weights_dir, cache=str(tmp_path / 'cache')))
  assert np.isfinite(scores['fid']) and scores['num_samples'] == 12


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


def test_quality_table_labels_mimicry_after_gan_jax(tmp_path):
  run = {'run_steps': 150, 'run_minutes': 30.0, 'images_per_second': 26.7,
         'load_before': [0.1, 0.1, 0.1], 'load_after': [2.0, 1.9, 1.0]}
  lines = [{'meta': True, 'date': '2026-12-07T10:00:00', 'peer': 'mimicry'},
           _record('mimicry', 30, 140, 250.0, model='mimicry_sngan32', **run),
           _record('gan_jax', 30, 160, 240.0, model='experiments/resnet_sngan.py', **run)]
  path = tmp_path / 'quality.jsonl'
  path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
  output = subprocess.run([sys.executable, os.path.join(BENCHMARKS, 'quality.py'), 'table',
                           str(path)], capture_output=True, text=True, check=True).stdout
  rows = [line for line in output.splitlines() if line.startswith(('| gan_jax', '| mimicry', '- '))]
  assert rows == [
      '| gan_jax | 30 | 160 | 240.0 | 6.00 | 0.50 | 0.25 | 10 |',
      '| mimicry | 30 | 140 | 250.0 | 6.25 | 0.50 | 0.25 | 10 |',
      '- gan_jax (experiments/resnet_sngan.py): 150 steps in 30.0 min, 26.7 images/s; '
      '1-minute load 0.10 before, 2.00 after',
      '- mimicry (mimicry_sngan32): 150 steps in 30.0 min, 26.7 images/s; 1-minute load 0.10 '
      'before, 2.00 after',
  ]


def _families(tmp_path, **env):
  """Runs families.sh with `env` (results in tmp_path): the finished process."""
  env = {**{k: v for k, v in os.environ.items() if k not in ISA_VARIABLES},
         'PYTHON': sys.executable, 'RESULTS': str(tmp_path / 'families.jsonl'), 'STEPS': '1',
         'WARMUP': '0', **env}
  return subprocess.run(['bash', os.path.join(BENCHMARKS, 'families.sh')], env=env,
                        capture_output=True, text=True, check=False)


def test_families_records_each_config_with_the_cpu_and_prints_its_row(tmp_path):
  # vanilla_gan.py:cpu, the MLP, compiles and runs in seconds.
  result = _families(tmp_path, FAMILIES='experiments/vanilla_gan.py', ISA='avx2')
  assert result.returncode == 0, result.stderr
  meta, line = [json.loads(line) for line in (tmp_path / 'families.jsonl').read_text().splitlines()]
  assert meta['meta'] and meta['kind'] == 'families' and meta['isa'] == 'avx2'
  assert meta['steps'] == 1 and meta['warmup'] == 0 and meta['notes'] == {}
  assert line['config'] == line['variant'] == 'experiments/vanilla_gan.py:cpu'
  assert line['synthetic'] and line['global_batch'] == 64 and line['n_critic'] == 1
  assert line['ms_per_step'] > 0 and line['compile_seconds'] > 0
  with open('/proc/cpuinfo') as f:
    cpu = {key.strip(): value.strip() for key, _, value in (l.partition(':') for l in f)}
  assert line['cpu_model'] == cpu.get('model name', '')
  assert set(line['cpu_flags']) <= set(cpu.get('flags', '').split())
  assert line['isa'] == 'avx2'
  assert line['isa_env']['XLA_FLAGS'] == '--xla_cpu_max_isa=AVX2'
  table = result.stdout.splitlines()
  assert table[0].startswith("Every family's :cpu preset, gan_jax.benchmark --synthetic (")
  assert ', ISA avx2, ' in table[0] and table[0].endswith(', 1 timed step)')
  assert table[2] == '| config | batch | n_critic | ms/step | images/s | compile s |'
  assert table[4].startswith('| vanilla_gan.py:cpu | 64 | 1 | ')


def test_families_rejects_an_unknown_family_or_one_without_a_cpu_preset(tmp_path):
  result = _families(tmp_path, FAMILIES='ns_gan nope')
  assert result.returncode == 1
  assert result.stderr.startswith("families.sh: unknown family 'nope' (those with a :cpu preset: ")
  assert ' ns_gan ' in result.stderr and 'toy_ring' not in result.stderr
  result = _families(tmp_path, FAMILIES='toy_ring')
  assert result.returncode == 1
  assert result.stderr.startswith('families.sh: toy_ring has no :cpu preset (those with one: ')
  assert not (tmp_path / 'families.jsonl').exists()  # nothing written, nothing run


def test_families_table_gives_each_configs_ratio_to_a_baseline(tmp_path):
  def run(path, meta, *records):
    path.write_text(''.join(json.dumps(line) + '\n' for line in (meta, *records)))
    return str(path)

  def line(config, ms, compile_seconds, batch=32, n_critic=1):
    return {'config': f'experiments/{config}.py:cpu', 'global_batch': batch,
            'n_critic': n_critic, 'ms_per_step': ms, 'compile_seconds': compile_seconds,
            'images_per_second': batch * n_critic * 1000 / ms, 'synthetic': True}

  meta = {'meta': True, 'date': '2026-12-06T10:00:00', 'device_kind': 'cpu (Xeon)',
          'cpu_count': 2, 'isa': 'native', 'jax_version': '0.10.2', 'steps': 20}
  old = run(tmp_path / 'old.jsonl', {**meta, 'date': '2026-12-01T10:00:00'},
            line('ns_gan', 25.0, 2.0), line('progan', 400.0, 8.0, batch=16),
            line('wgan_gp', 500.0, 5.0, batch=64, n_critic=5), line('sngan', 30.0, 3.0))
  new = run(tmp_path / 'new.jsonl', {**meta, 'notes': {
                'experiments/progan.py:cpu': 'timed at its last stage',
                'experiments/biggan.py:cpu': 'not run: not shown'}},
            line('ns_gan', 26.0, 3.0), line('progan', 500.0, 8.0, batch=16),
            {'failed': True, 'global_batch': 64, 'error': 'timed out', 'framework': 'gan_jax',
             'variant': 'experiments/wgan_gp.py:cpu'},
            line('stylegan2', 700.0, 20.0))
  table = subprocess.run([sys.executable, os.path.join(BENCHMARKS, 'table.py'), 'families', new,
                          '--baseline', old], capture_output=True, text=True,
                         check=True).stdout.splitlines()
  assert table == [
      "Every family's :cpu preset, gan_jax.benchmark --synthetic (2026-12-06T10:00:00, "
      'cpu (Xeon), 2 cores, ISA native, jax 0.10.2, 20 timed steps)',
      '',
      '| config | batch | n_critic | ms/step | images/s | compile s | baseline ms/step '
      '| ms/step ratio | compile ratio |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      '| ns_gan.py:cpu | 32 | 1 | 26.0 | 1,231 | 3.0 | 25.0 | 1.04x | 1.50x |',
      '| progan.py:cpu | 16 | 1 | 500 | 32.0 | 8.0 | 400 | 1.25x | 1.00x |',
      '| wgan_gp.py:cpu | 64 | - | failed | - | - | 500 | - | - |',
      '| stylegan2.py:cpu | 32 | 1 | 700 | 45.7 | 20.0 | - | - | - |',
      '',
      '- progan.py:cpu: timed at its last stage',
      '- ratios: this run over the baseline (2026-12-01T10:00:00, cpu (Xeon), 2 cores, '
      'ISA native, jax 0.10.2); above 1 is slower',
      '- in the baseline only: sngan.py:cpu',
      '- slower than the baseline by more than 10%: progan.py:cpu (1.25x)',
      '- failed: wgan_gp.py:cpu: timed out',
  ]
  # Without a baseline: the first six columns only.
  table = subprocess.run([sys.executable, os.path.join(BENCHMARKS, 'table.py'), 'families', new],
                         capture_output=True, text=True, check=True).stdout.splitlines()
  assert table[2] == '| config | batch | n_critic | ms/step | images/s | compile s |'
  assert table[4:8] == ['| ns_gan.py:cpu | 32 | 1 | 26.0 | 1,231 | 3.0 |',
                        '| progan.py:cpu | 16 | 1 | 500 | 32.0 | 8.0 |',
                        '| wgan_gp.py:cpu | 64 | - | failed | - | - |',
                        '| stylegan2.py:cpu | 32 | 1 | 700 | 45.7 | 20.0 |']

"""The benchmark: every field reported, consistent, and one JSON line from the CLI."""
import json
import math
import os
import subprocess
import sys

import pytest

from gan_jax import benchmark
from test_train import load_experiment

ROOT = os.path.join(os.path.dirname(__file__), '..')
FIELDS = ('device_kind', 'device_count', 'process_count', 'global_batch', 'n_critic',
          'compile_seconds', 'ms_per_step', 'images_per_second', 'peak_memory_bytes', 'mfu',
          'flops_per_step', 'synthetic', 'config')


@pytest.mark.parametrize('synthetic', [True, False], ids=['synthetic', 'real'])
@pytest.mark.parametrize('experiment', ['toy_ring.py', 'ns_gan.py'])
def test_benchmark_reports_every_field(experiment, synthetic, tiny_fashion):
  config = load_experiment(os.path.join(ROOT, 'experiments', experiment), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  results = benchmark.run_benchmark(config, steps=3, warmup=1, synthetic=synthetic,
                                    config_path=experiment)
  assert set(results) == set(FIELDS)
  for value in results.values():
    if isinstance(value, (int, float)):
      assert math.isfinite(value)
  assert results['synthetic'] is synthetic
  assert results['global_batch'] == config.batch_size
  assert results['images_per_second'] == pytest.approx(
      results['global_batch'] * results['n_critic'] * 1000 / results['ms_per_step'])


def test_cli_prints_one_json_line():
  output = subprocess.run(
      [sys.executable, '-m', 'gan_jax.benchmark', '--config=experiments/toy_ring.py:smoke',
       '--steps=3', '--warmup=1', '--synthetic'],
      cwd=ROOT, capture_output=True, text=True, check=True).stdout
  lines = output.splitlines()
  assert len(lines) == 1
  assert set(json.loads(lines[0])) == set(FIELDS)


def test_input_benchmark_times_the_batches_training_reads(tiny_fashion):
  config = load_experiment(os.path.join(ROOT, 'experiments', 'ns_gan.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.data.image_size = 32
  results = benchmark.run_input_benchmark(config, steps=5, warmup=1, config_path='ns_gan.py')
  assert results['data_shape'] == [32, 32, 1] and results['workers'] == 0
  assert results['images_per_second'] == pytest.approx(
      config.batch_size * config.n_critic * 1000 / results['ms_per_step'])

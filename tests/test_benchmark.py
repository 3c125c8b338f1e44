"""The benchmark: every field reported, consistent, and one JSON line from the CLI."""
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from gan_jax import benchmark, op_profile
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


def test_flops_only_counts_the_step_without_running_it(tiny_fashion, monkeypatch):
  config = load_experiment(os.path.join(ROOT, 'experiments', 'ns_gan.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  timed = benchmark.run_benchmark(config, steps=1, warmup=0, synthetic=True)
  monkeypatch.setattr(benchmark.input_pipeline, 'create_dataset', None)  # reads no data
  counted = benchmark.run_benchmark(config, steps=1, warmup=0, synthetic=False,
                                    config_path='ns_gan.py', flops_only=True)
  assert counted['flops_per_step'] == timed['flops_per_step'] > 0
  assert 'ms_per_step' not in counted and counted['data_shape'] == [28, 28, 1]
  # Twice the batch, twice the FLOPs, to the rounding of XLA's count of the small parts.
  config.batch_size *= 2
  doubled = benchmark.run_benchmark(config, steps=1, warmup=0, synthetic=False, flops_only=True)
  assert doubled['flops_per_step'] == pytest.approx(2 * counted['flops_per_step'], rel=0.05)


def test_profile_ops_names_the_steps_slowest_ops_and_where_they_came_from():
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.benchmark', '--config=experiments/toy_ring.py:smoke',
       '--steps=3', '--warmup=1', '--synthetic', '--profile_ops=5'],
      cwd=ROOT, capture_output=True, text=True, check=True)
  line = json.loads(result.stdout.splitlines()[-1])
  top = line['top_ops']
  assert 0 < len(top) <= 5
  times = [op['ms_per_step'] for op in top]
  assert times == sorted(times, reverse=True) and times[-1] > 0
  # The step's ops, each with its shape and the JAX operation it came from; the MLP's
  # matmuls among them.
  assert all(op['shape'] and op['opcode'] for op in top)
  assert any('jit(step)' in op['source'] for op in top)
  assert all(f'{op["ms_per_step"]:9.2f} ms  {op["op"]}' in result.stderr for op in top)


def test_op_table_reads_names_shapes_and_sources_of_a_compiled_program():
  program = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0)).lower(jnp.ones((4, 3))).compile()
  ops = op_profile.instructions(program.as_text())
  dots = [op for op in ops.values() if 'dot_general' in op['source']]
  assert dots and all(op['shape'].startswith('f32[4,4]') for op in dots)
  assert {'shape': '(f32[2]{0}, f32[3]{0})', 'opcode': 'fusion', 'source': ''} == (
      op_profile.instructions('  ROOT %t = (f32[2]{0}, f32[3]{0}) fusion(%a), kind=kLoop')['t'])

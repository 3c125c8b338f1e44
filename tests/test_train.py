"""The training step and loop: update counts, data parallelism, resume, every config."""
import glob
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import (checkpoints, configs, data, input_pipeline, models, sample, train, train_step,
                     validation)
from gan_jax.errors import UserError
from gan_jax.state import create_optimizers, init_state

EXPERIMENTS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'experiments', '*.py')))


def load_experiment(path, arg=None):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def killed_after_step_3_and_resumed(config, workdir):
  """The final state of a 4-step run (checkpoints every 2) killed after step 3, before its
  checkpoint was written, and resumed from step 2's."""
  config.num_steps = 3
  train.train_and_evaluate(config, workdir)
  manager = checkpoints.create_manager(workdir, 3)
  manager.delete(3)
  manager.close()
  config.num_steps = 4
  return train.train_and_evaluate(config, workdir)


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def _toy_config(**overrides):
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'toy_ring.py'), 'smoke')
  config.update(overrides)
  return config


@pytest.mark.parametrize('path', EXPERIMENTS, ids=os.path.basename)
def test_every_experiment_trains_two_steps(path, tmp_path, tiny_fashion, fast_compile):
  config = load_experiment(path, 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((state.g_params, state.d_params)))
  lines = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert [line['step'] for line in lines] == [1, 2]
  assert {'d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm'} <= set(lines[0])
  assert os.path.exists(tmp_path / 'samples' / 'step_000002.png')
  assert glob.glob(str(tmp_path / 'events.out.tfevents.*'))
  # The saved config is the one given, with the data set's facts filled in.
  saved = checkpoints.read_config(str(tmp_path))
  assert saved.data.shape == input_pipeline.data_shape(config)
  assert saved.to_dict() == data.resolve(config.copy_and_resolve_references()).to_dict()


def test_workdir_from_before_a_config_field_loads_with_its_default(tmp_path):
  config = _toy_config()
  train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / checkpoints.CONFIG_FILE) as f:
    saved = json.load(f)
  del saved['model']['compute_dtype'], saved['eval_every']  # fields added in later versions
  with open(tmp_path / checkpoints.CONFIG_FILE, 'w') as f:
    json.dump(saved, f)
  loaded = checkpoints.load(str(tmp_path))
  assert loaded.config.to_dict() == data.resolve(config.copy_and_resolve_references()).to_dict()
  assert int(loaded.state.step) == 2


def _one_step(config, num_devices=1):
  """Runs one train_step on a batch of the config's data; returns (old state, new state)."""
  mesh = Mesh(jax.devices()[:num_devices], ('data',))
  data_shape = input_pipeline.data_shape(config)
  generator, discriminator = models.build(config, data_shape)
  g_tx, d_tx = create_optimizers(config)
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, data_shape)
  old_state = jax.device_get(state)  # the step donates `state`
  real = jax.device_put(next(iter(input_pipeline.create_dataset(config))),
                        NamedSharding(mesh, P(None, 'data')))
  step = train_step.make_train_step(config, mesh, generator, discriminator, g_tx, d_tx)
  new_state, metrics = step(state, real)
  return old_state, new_state, metrics


def test_n_critic_discriminator_updates_per_generator_update():
  _, state, metrics = _one_step(_toy_config(n_critic=3))
  # Adam counts its updates: three for D, one for G, in one step.
  assert int(state.d_opt_state[0].count) == 3
  assert int(state.g_opt_state[0].count) == 1
  assert int(state.step) == 1
  assert np.isfinite(metrics['d_loss']) and 0 <= metrics['d_accuracy'] <= 1


def test_step_changes_both_networks_and_reports_metrics():
  config = _toy_config(loss='wasserstein', gradient_penalty=10.0)
  old, new, metrics = _one_step(config)
  # Not the critic's output bias: it cancels in E D(x) - E D(G(z)), so its gradient is zero
  # up to rounding, and whether Adam's normalised step moves it depends on that rounding.
  del old.d_params['Dense_2']['bias'], new.d_params['Dense_2']['bias']
  for name in ('g_params', 'd_params'):
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), getattr(old, name),
                           getattr(new, name))
    assert all(jax.tree.leaves(changed)), name
  assert metrics['gradient_penalty'] > 0
  np.testing.assert_allclose(metrics['wasserstein_estimate'],
                             metrics['d_real_logit'] - metrics['d_fake_logit'], rtol=1e-5)


@pytest.mark.parametrize('overrides', [
    {'model.compute_dtype': 'bfloat16'},  # mixed precision
    {'model.d_batch_norm': True, 'model.conv_implementation': 'xla'},  # DCGAN's D, XLA convs
])
def test_dcgan_step_variants_keep_float32_params_and_finite_metrics(overrides, tiny_fashion):
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'ns_gan.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.update_from_flattened_dict(overrides)
  old, new, metrics = _one_step(config)
  for name in ('g_params', 'd_params'):
    before, after = jax.tree.leaves(getattr(old, name)), jax.tree.leaves(getattr(new, name))
    assert all(p.dtype == np.float32 and np.all(np.isfinite(p)) for p in after), name
    assert not all(np.array_equal(a, b) for a, b in zip(before, after)), name
  assert all(np.isfinite(value) for value in jax.device_get(metrics).values())
  if config.model.d_batch_norm:
    assert jax.tree.leaves(new.d_batch_stats)  # its running averages live in the state


_DATA_PARALLEL_SCRIPT = r'''
import importlib, json, sys
import jax
jax.config.update('jax_num_cpu_devices', 4)
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from gan_jax import input_pipeline, models, train_step
from gan_jax.state import create_optimizers, init_state

# argv: an experiment's name in experiments/, then the JSON of its config overrides.
sys.path.insert(0, 'experiments')
config = importlib.import_module(sys.argv[1]).get_config('smoke')
config.update(json.loads(sys.argv[2]))
data_shape = input_pipeline.data_shape(config)
generator, discriminator = models.build(config, data_shape)
g_tx, d_tx = create_optimizers(config)
final = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = Mesh(devices, ('data',))
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, data_shape)
  step = train_step.make_train_step(config, mesh, generator, discriminator, g_tx, d_tx)
  data = iter(input_pipeline.create_dataset(config))
  for _ in range(3):
    real = jax.device_put(next(data), NamedSharding(mesh, P(None, 'data')))
    state, metrics = step(state, real)
    jax.block_until_ready(state)  # 4 fake devices on 2 cores: keep the collectives in step
  final.append(jax.device_get((state.g_params, state.d_params, metrics)))
print(len(jax.devices()), max(jax.tree.leaves(jax.tree.map(
    lambda a, b: float(np.max(np.abs(a - b))), *final))))
'''


def _one_vs_four_devices(experiment, **overrides):
  """Largest difference of params and metrics after 3 steps on 1 and on 4 devices."""
  result = subprocess.run(
      [sys.executable, '-c', _DATA_PARALLEL_SCRIPT, experiment, json.dumps(overrides)],
      capture_output=True, text=True, cwd=os.path.join(os.path.dirname(__file__), '..'),
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  devices, difference = result.stdout.splitlines()[-1].split()  # after any data set logs
  assert devices == '4'
  return float(difference)


def test_one_and_four_devices_train_the_same_model():
  # Summation order differs across devices; Adam's sign-like steps (lr 1e-3) amplify that a little.
  assert _one_vs_four_devices('toy_ring', batch_size=16, n_critic=2) < 1e-4


def test_sync_batch_norm_makes_four_devices_train_as_one(tiny_fashion):
  manual_dir, data_dir = tiny_fashion
  overrides = dict(batch_size=16, data=dict(manual_dir=manual_dir, data_dir=data_dir),
                   model=dict(d_batch_norm=True))
  # Batch statistics over 4 examples per device instead of 16 change the model...
  assert _one_vs_four_devices('ns_gan', **overrides) > 1e-2
  # ... unless they are taken over all devices.
  overrides['model']['sync_batch_norm'] = True
  assert _one_vs_four_devices('ns_gan', **overrides) < 1e-4


@pytest.mark.parametrize('ema', [{}, {'g_ema_decay': 0.5, 'g_ema_start': 1}], ids=['no_ema', 'ema'])
def test_resume_after_lost_steps_equals_uninterrupted_run(tmp_path, ema):
  config = _toy_config(num_steps=4, checkpoint_every=2, log_every=2, sample_every=100, **ema)
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'a'))
  resumed = killed_after_step_3_and_resumed(config, str(tmp_path / 'b'))
  assert_trees_equal(jax.device_get(uninterrupted), jax.device_get(resumed))


def test_resume_refuses_a_config_that_changes_shapes(tmp_path):
  config = _toy_config()
  train.train_and_evaluate(config, str(tmp_path))
  config.model.width = 16
  with pytest.raises(UserError, match='model.width.*allow_config_change'):
    train.train_and_evaluate(config, str(tmp_path))
  # Allowed, the workdir starts over and keeps the old checkpoints aside.
  config.allow_config_change = True
  state = train.train_and_evaluate(config, str(tmp_path))
  assert state.g_params['Dense_0']['kernel'].shape[-1] == 16
  aside, = glob.glob(str(tmp_path / 'checkpoints.replaced-*'))
  assert sorted(os.listdir(aside)) == ['2']
  assert checkpoints.load(str(tmp_path)).config.model.width == 16


def test_sample_cli_writes_images_in_unit_range(tmp_path, tiny_fashion):
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'ns_gan.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  train.train_and_evaluate(config, str(tmp_path))
  output = tmp_path / 'out' / 'samples.npy'
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.sample', f'--workdir={tmp_path}', '--num_samples=7',
       f'--output={output}', '--seed=3'], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  samples = np.load(output)
  assert samples.shape == (7, 28, 28, 1) and samples.dtype == np.float32
  assert samples.min() >= 0.0 and samples.max() <= 1.0
  # The same seed gives the same samples; another seed other ones.
  loaded = checkpoints.load(str(tmp_path))
  np.testing.assert_allclose(sample.sample(loaded, 7, seed=3), samples, atol=1e-6)
  assert not np.allclose(sample.sample(loaded, 7, seed=4), samples)


@pytest.mark.parametrize('overrides, message', [
    (dict(loss='nonsaturating'), 'non_saturating'),
    (dict(dataset='cifar'), 'fashion_mnist'),
    (dict(n_critic=0), 'n_critic'),
    (dict(batch_size=6), 'multiple of 4'),
    (dict(gradient_penalty=10.0, model=dict(d_batch_norm=True)), 'batch norm'),
])
def test_config_errors_before_compiling(overrides, message):
  config = configs.default()
  config.update(overrides)
  with pytest.raises(UserError, match=message):
    validation.validate(config, num_devices=4)


def test_unknown_preset_lists_valid_ones():
  with pytest.raises(UserError, match='cpu, smoke'):
    load_experiment(os.path.join(os.path.dirname(EXPERIMENTS[0]), 'ns_gan.py'), 'gpu')


def test_main_rejects_a_mistyped_field_before_running(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.main', '--config=experiments/ns_gan.py:smoke',
       '--config.ncritic=3', f'--workdir={tmp_path}'], capture_output=True, text=True,
      cwd=os.path.join(os.path.dirname(__file__), '..'), timeout=120)
  assert result.returncode != 0
  assert "Did you mean 'config.n_critic'" in result.stderr and 'Traceback' not in result.stderr
  assert not os.listdir(tmp_path)  # nothing started


def test_toy_ring_run_covers_all_eight_modes(tmp_path):
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'toy_ring.py'))
  config.log_every = config.sample_every = config.checkpoint_every = config.num_steps
  train.train_and_evaluate(config, str(tmp_path))
  points = sample.sample(checkpoints.load(str(tmp_path)), 2000, seed=0)
  centers, std = input_pipeline.toy_modes('ring8')
  distances = np.linalg.norm(points[:, None] - centers[None], axis=-1)
  near = distances.min(axis=1) < 3 * std  # a high-quality sample (VEEGAN's criterion)
  per_mode = np.bincount(distances.argmin(axis=1)[near], minlength=len(centers))
  assert np.all(per_mode >= 0.01 * len(points)), per_mode  # every mode holds >= 1% of samples
  assert near.mean() > 0.3
  # The end of a toy run strings its sample pictures into a GIF.
  assert Image.open(tmp_path / 'training.gif').n_frames == len(os.listdir(tmp_path / 'samples'))



def test_training_evaluates_and_keeps_the_best_checkpoint(tmp_path):
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'toy_grid.py'), 'smoke')
  config.num_steps, config.checkpoint_every = 3, 3
  config.eval_every, config.eval_num_samples, config.keep_best_checkpoint = 1, 200, True
  config.g_ema_decay = 0.0  # an EMA barely moves in 3 steps: the scores would tie
  train.train_and_evaluate(config, str(tmp_path))
  results = [json.loads(line) for line in open(tmp_path / 'eval.jsonl')]
  assert [r['step'] for r in results] == [1, 2, 3]
  assert all(r['num_modes'] == 25 and 0 <= r['modes_covered'] <= 25 for r in results)
  logged = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert [line['eval_modes_covered'] for line in logged if 'eval_modes_covered' in line] == [
      r['modes_covered'] for r in results]
  scores = [r['modes_covered'] + r['high_quality_share'] for r in results]
  best = checkpoints.load(str(tmp_path), best=True)
  assert int(best.state.step) == results[int(np.argmax(scores))]['step']
  assert checkpoints.create_manager(str(tmp_path), best=True).all_steps() == [int(best.state.step)]

"""ProGAN's training as the reference's (tkarras/progressive_growing_of_gans): Adam reset when
the level of detail starts or stops changing, the gradient penalty at the data's side, a
batch per stage; each across a kill and resume."""
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import (benchmark, configs, growth, input_pipeline, models, train, train_step,
                     validation)
from gan_jax.errors import UserError
from gan_jax.state import create_optimizers, init_state, reset_adam
from test_train import assert_trees_equal, killed_after_step_3_and_resumed, load_experiment

PROGAN = os.path.join(os.path.dirname(__file__), '..', 'experiments', 'progan.py')


def _growth_config(stable, fade, batch_size=4, batch_sizes=()):
  config = configs.default()
  config.model.name, config.batch_size = 'progan', batch_size
  config.growth.stable_images, config.growth.fade_images = stable, fade
  config.growth.batch_sizes = batch_sizes
  return config


def _reference_resets(config, final_side, steps):
  """train.py's rule on our schedule: Adam is reset before an update whose lod differs from
  the previous update's in its floor or its ceiling (lod: log2 of data side / stage side,
  plus 1 - alpha while a block fades in)."""
  top = math.log2(final_side // 4)
  def lod(step):
    stage = growth.stage_at(config, step, final_side)
    return top - stage + (1 - float(growth.alpha_at(config, step, stage)) if stage else 0)
  return [step for step in range(1, steps)
          if (math.floor(lod(step)), math.ceil(lod(step)))
          != (math.floor(lod(step - 1)), math.ceil(lod(step - 1)))]


def _all_resets(config, final_side):
  return sorted({step for stage in range(growth.num_stages(final_side))
                 for step in growth.adam_reset_steps(config, stage)})


def test_adam_is_reset_where_a_fade_in_starts_to_count_and_where_it_ends():
  # 2 updates at 4x4, then per stage: alpha 0 (the old network), 0.5, then 1 twice.
  config = _growth_config(stable=8, fade=8)
  assert [growth.adam_reset_steps(config, stage) for stage in range(4)] == [
      (), (3, 4), (7, 8), (11, 12)]
  assert _all_resets(config, 32) == _reference_resets(config, 32, 20)
  for config in (_growth_config(stable=8, fade=0),  # one reset per stage
                 _growth_config(stable=10, fade=7),  # stages start past their share
                 _growth_config(stable=0, fade=12),  # no stable phase: fade after fade
                 _growth_config(stable=8, fade=8, batch_sizes=(4, 3, 2, 1))):
    assert _all_resets(config, 32) == _reference_resets(config, 32, 60)


def test_reset_adam_zeroes_moments_and_count_but_keeps_the_schedule():
  tx = optax.adam(optax.linear_schedule(1.0, 0.0, 10))
  params = {'w': jnp.ones(3)}
  opt_state = tx.init(params)
  for _ in range(3):
    _, opt_state = tx.update({'w': jnp.full(3, 2.0)}, opt_state, params)
  kept = reset_adam(opt_state, jnp.bool_(False))
  assert_trees_equal(kept, opt_state)
  fresh = reset_adam(opt_state, jnp.bool_(True))
  assert_trees_equal(fresh[0], tx.init(params)[0])
  assert int(fresh[1].count) == 3  # the learning rate's schedule goes on


def _progan_step_setup(fade_images=16):
  """The smoke ProGAN at 16x16 (stage 0 for 1 update, then 8x8 fading over 2 updates), a
  fresh state and a batch of random images."""
  config = load_experiment(PROGAN, 'smoke')
  config.growth.fade_images = fade_images
  mesh = Mesh(jax.devices()[:1], ('data',))
  data_shape = (16, 16, 1)
  generator, discriminator = models.build(config, data_shape)
  g_tx, d_tx = create_optimizers(config)
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, data_shape)
  images = np.random.default_rng(0).uniform(-1, 1, (1, 8, 16, 16, 1)).astype(np.float32)
  batch = jax.device_put({'data': images, 'label': np.zeros((1, 8), np.int32)},
                         NamedSharding(mesh, P(None, 'data')))
  make_step = lambda stage: train_step.make_train_step(config, mesh, generator, discriminator,
                                                       g_tx, d_tx, stage=stage)
  return config, generator, discriminator, state, batch, make_step


@pytest.mark.usefixtures('fast_compile')
def test_step_restarts_both_adams_where_the_new_block_starts_to_count():
  config, _, _, state, batch, make_step = _progan_step_setup()
  assert growth.adam_reset_steps(config, 1) == (2, 3)
  step = make_step(1)
  # A long run's Adam: count 100, moments of ones.
  worn = lambda s: s._replace(count=jnp.int32(100), mu=jax.tree.map(jnp.ones_like, s.mu),
                              nu=jax.tree.map(jnp.ones_like, s.nu))
  for at, reset in ((2, True), (1, False)):
    old = state.replace(step=jnp.int32(at), g_opt_state=(worn(state.g_opt_state[0]),) + tuple(
        state.g_opt_state[1:]), d_opt_state=(worn(state.d_opt_state[0]),) + tuple(
            state.d_opt_state[1:]))
    new, _ = step(jax.tree.map(jnp.copy, old), batch)
    for adam in (new.g_opt_state[0], new.d_opt_state[0]):
      assert int(adam.count) == (1 if reset else 101)
      # b1 = 0 makes mu the gradient; b2 = 0.99 gives nu = 0.01 g^2 from zero, or 0.99 more.
      expected_nu = jax.tree.map(lambda m: 0.01 * m ** 2 + (0 if reset else 0.99), adam.mu)
      jax.tree.map(lambda nu, e: np.testing.assert_allclose(nu, e, rtol=1e-5, atol=1e-12),
                   adam.nu, expected_nu)


@pytest.mark.usefixtures('fast_compile')
def test_gradient_penalty_is_taken_at_the_data_side_as_the_reference_does():
  config, generator, discriminator, state, batch, make_step = _progan_step_setup()
  at, stage = 2, 1  # 8x8 of 16x16 data, alpha 0.5
  state = state.replace(step=jnp.int32(at))
  fade = growth.alpha_at(config, at, stage)
  assert float(fade) == 0.5
  # The step's random numbers (train_step.step): latents and interpolation weights.
  z_key, mix_key = jax.random.split(jax.random.fold_in(state.key, state.step), 2)
  z = models.sample_latents(z_key, (8, config.model.latent_dim), config.model.latent_prior)
  mix = jax.random.uniform(mix_key, (8,)).reshape(8, 1, 1, 1)
  g_params, d_params = jax.device_get((state.g_params, state.d_params))
  # The reference at the data's side: G's image (upscaled to 16x16), the real image faded
  # at 8x8 and upscaled, interpolated there, and D average-pooling its input itself.
  fake = generator.apply({'params': g_params}, z, stage=stage, alpha=fade)
  real = growth.upscale(growth.real_at_stage(batch['data'][0], stage, fade), 16)
  d_full = lambda x: discriminator.apply({'params': d_params}, growth.downscale(x, 8),
                                         alpha=fade)
  grads = jax.grad(lambda x: jnp.sum(d_full(x)))(mix * real + (1 - mix) * fake)
  norms = jnp.sqrt(jnp.sum(grads ** 2, axis=(1, 2, 3)))
  expected_penalty = float(jnp.mean((norms - 1) ** 2))
  expected_drift = float(jnp.mean(d_full(real) ** 2))  # the logits are the same at 8x8
  _, metrics = make_step(stage)(state, batch)
  assert float(metrics['gradient_penalty']) == pytest.approx(expected_penalty, rel=1e-4)
  assert float(metrics['drift_penalty']) == pytest.approx(expected_drift, rel=1e-4)
  # At the stage's side the norms would be twice as large (the block mean's gradient).
  stage_norms = 2 * norms
  assert float(jnp.mean((stage_norms - 1) ** 2)) != pytest.approx(expected_penalty, rel=0.1)


def test_batch_sizes_must_give_a_positive_integer_per_stage():
  config = load_experiment(PROGAN)  # 32x32: 4 stages
  for sizes, message in (((16, 16, 8), r'one batch per stage, 4 for 32x32 images \(sides 4, '
                                       r'8, 16, 32\), got 3'),
                         ((16, 16, 8, 0), 'positive integers'),
                         ((16, 16, 8, '4'), 'positive integers'),
                         ((16, 16, 8, 6), r'mbstd_group_size=4 must divide the batch on each '
                                          r'device \(6, config.growth.batch_sizes\[3\]\)')):
    config.growth.batch_sizes = sizes
    with pytest.raises(UserError, match=message):
      validation.validate(config, 1)
  config.growth.batch_sizes = (16, 16, 8, 4)
  validation.validate(config, 1)
  config = configs.default()
  config.growth.batch_sizes = (8,)
  with pytest.raises(UserError, match='for growing models'):
    validation.validate(config, 1)


def test_schedule_counts_each_stage_in_its_own_batches():
  # 4x4 at batch 8 for 16 images (2 updates), then 8x8 at batch 4 fading over 8 images and
  # stable for 16 (6 updates), then 16x16 at batch 2.
  config = _growth_config(stable=16, fade=8, batch_sizes=(8, 4, 2))
  stages = [growth.stage_at(config, step, 16) for step in range(10)]
  assert stages == [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]
  assert [float(growth.alpha_at(config, step, stage)) for step, stage in
          enumerate(stages)] == [1, 1, 0, 0.5, 1, 1, 1, 1, 0, 0.25]
  assert [growth.images_before(config, step, 16) for step in range(10)] == [
      0, 8, 16, 20, 24, 28, 32, 36, 40, 42]


def test_a_model_that_does_not_grow_counts_one_batch_per_critic_step():
  config = configs.default()  # batch 64, n_critic 1
  config.n_critic = 5
  assert growth.first_step(config, None) == 0
  assert [growth.images_before(config, step, 28) for step in (0, 1, 7)] == [0, 320, 2240]
  assert growth.largest_batch_size(config) == 64
  assert growth.largest_batch_size(_growth_config(16, 8, batch_sizes=(8, 12, 2))) == 12


def test_the_largest_stage_batch_must_fit_the_training_images(tiny_fashion):
  config = load_experiment(PROGAN, 'smoke')  # 16x16: 3 stages
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.growth.batch_sizes = (4, 12, 4)
  config.data.num_examples = 10
  with pytest.raises(UserError, match=r'^10 training images cannot fill a batch of 12; lower '
                     r'config.growth.batch_sizes or raise config.data.num_examples.$'):
    next(iter(input_pipeline.create_dataset(config)))


@pytest.mark.parametrize('synthetic', [True, False], ids=['synthetic', 'real'])
def test_benchmark_times_the_last_stage_with_its_batch(synthetic, tiny_fashion, fast_compile):
  config = load_experiment(PROGAN, 'smoke')  # 16x16: 3 stages
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.growth.batch_sizes = (8, 4, 2)
  results = benchmark.run_benchmark(config, steps=2, warmup=1, synthetic=synthetic)
  assert results['global_batch'] == 2
  assert results['images_per_second'] == pytest.approx(
      2 * config.n_critic * 1000 / results['ms_per_step'])
  inputs = benchmark.run_input_benchmark(config, steps=2, warmup=0)
  assert inputs['images_per_second'] == pytest.approx(
      2 * config.n_critic * 1000 / inputs['ms_per_step'])


def test_batch_per_stage_pipeline_cuts_one_stream(tiny_fashion):
  config = load_experiment(PROGAN, 'smoke')  # 16x16: 3 stages
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.data.random_flip = True
  constant = [batch['data'] for _, batch in zip(range(4), input_pipeline.create_dataset(config))]
  # The same size at every stage: the same batches as without the field.
  config.growth.batch_sizes = (8, 8, 8)
  same = [batch['data'] for _, batch in zip(range(4), input_pipeline.create_dataset(config))]
  jax.tree.map(np.testing.assert_array_equal, same, constant)
  # 8 at 4x4 (update 1), then 4: the stream goes on where the first batch ended.
  config.growth.batch_sizes = (8, 4, 4)
  varied = [batch['data'] for _, batch in zip(range(3), input_pipeline.create_dataset(config))]
  assert [batch.shape[:2] for batch in varied] == [(1, 8), (1, 4), (1, 4)]
  np.testing.assert_array_equal(varied[0], constant[0])
  flat = np.concatenate([batch[0] for batch in constant])
  unflipped = lambda x: np.minimum(x, x[:, :, ::-1])  # the flips are drawn per batch
  np.testing.assert_array_equal(unflipped(np.concatenate([varied[1][0], varied[2][0]])),
                                unflipped(flat[8:16]))
  resumed = next(iter(input_pipeline.create_dataset(config, start_step=2)))
  np.testing.assert_array_equal(resumed['data'], varied[2])


@pytest.mark.parametrize('batch_sizes', [(), (8, 4, 4)], ids=['one_batch', 'batch_per_stage'])
def test_adam_reset_and_batch_per_stage_survive_a_kill_and_resume(batch_sizes, tmp_path,
                                                                  tiny_fashion, fast_compile):
  config = load_experiment(PROGAN, 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.growth.batch_sizes = batch_sizes
  # Update 1 at 4x4, then 8x8: alpha 0, then the block starts to count (a reset before
  # update 3, just after the checkpoint of step 2 the resumed run starts from) and ends its
  # fade-in by update 4 (another).
  config.growth.fade_images = 2 * growth.batch_size(config, 1)
  assert growth.adam_reset_steps(config, 1) == (2, 3)
  config.update(checkpoint_every=2, log_every=1, sample_every=100)
  config.num_steps = 4
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'a'))
  assert int(uninterrupted.g_opt_state[0].count) == int(uninterrupted.d_opt_state[0].count) == 1
  resumed = killed_after_step_3_and_resumed(config, str(tmp_path / 'b'))
  assert_trees_equal(jax.device_get(uninterrupted), jax.device_get(resumed))

"""The ResNet GANs (SNGAN): layouts against Mimicry's, parameter counts against a hand
count, spectral norm, class conditioning and the projection discriminator's logit."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import configs, layers, models
from gan_jax.errors import UserError
from gan_jax.models import resnet


def _config(**model):
  config = configs.default()
  config.model.update({'name': 'resnet', 'spectral_norm': True, **model})
  return config


def variable_shapes(module, *inputs):
  """The shapes of `module`'s variables for these inputs, without computing anything."""
  variables = jax.eval_shape(lambda *x: module.init(jax.random.key(0), *x, train=False), *inputs)
  return jax.tree.map(lambda v: v.shape, variables)


def _count(tree):
  return sum(np.prod(shape) for shape in jax.tree.leaves(tree, is_leaf=lambda v: type(v) is tuple))


def _build(shape, num_classes=0, **model):
  return resnet.build(_config(**model), shape, num_classes)


@pytest.mark.parametrize('side,num_g_blocks', [(32, 3), (64, 4)])
def test_output_shapes_and_one_more_block_per_doubling(side, num_g_blocks):
  generator, discriminator = _build((side, side, 3), width=8, latent_dim=5)
  z = jnp.zeros((2, 5))
  images = jax.eval_shape(
      lambda: generator.apply(generator.init(jax.random.key(0), z), z, train=False))
  assert images.shape == (2, side, side, 3) and images.dtype == jnp.float32
  logits = jax.eval_shape(lambda x: discriminator.apply(
      discriminator.init(jax.random.key(0), x), x, train=False), images)
  assert logits.shape == (2,) and logits.dtype == jnp.float32
  g_blocks = [name for name in variable_shapes(generator, z)['params'] if name.startswith('GBlock')]
  d_blocks = [name for name in variable_shapes(discriminator, images)['params']
              if name.startswith('DBlock')]
  assert len(g_blocks) == num_g_blocks and len(d_blocks) == num_g_blocks + 1


def test_parameter_counts_match_a_hand_count():
  w, v, d, k = 8, 4, 5, 10  # G width, D width, latent, classes; 32x32x3 images
  block = 2 * (9 * w * w + w) + (w * w + w)  # two 3x3 convs and the 1x1 shortcut
  # G: dense to 4x4xw, three blocks with two batch norms each, batch norm, 3x3 conv to RGB.
  g_rest = 16 * (d * w + w) + 3 * block + 2 * w + 9 * w * 3 + 3
  # D: the optimized block (3x3 3->v, 3x3 v->v, 1x1 3->v), a downsampling block (two 3x3
  # and the 1x1 shortcut), two blocks with identity shortcuts, then the linear map.
  d_rest = ((27 * v + v) + (9 * v * v + v) + (3 * v + v) + (19 * v * v + 3 * v)
            + 2 * (18 * v * v + 2 * v) + v + 1)
  for num_classes, batch_norm_params in ((0, 2 * w), (k, 2 * k * w)):
    generator, discriminator = _build((32, 32, 3), num_classes, width=w, d_width=v,
                                      latent_dim=d)
    labels = jnp.zeros((1,), jnp.int32)
    g_vars = variable_shapes(generator, jnp.zeros((1, d)), labels)
    assert _count(g_vars['params']) == g_rest + 6 * batch_norm_params
    assert _count(g_vars['batch_stats']) == 2 * (6 * w + w)  # mean and variance per batch norm
    d_vars = variable_shapes(discriminator, jnp.zeros((1, 32, 32, 3)), labels)
    assert _count(d_vars['params']) == d_rest + num_classes * v  # + the class embedding


def _kernel_shapes(params, layers_in_order):
  return [params[layer]['kernel'] for layer in layers_in_order]


def test_layouts_are_mimicrys_sngan_32_and_sngan_64():
  # sngan_32: G of 256 channels throughout; D of 128, downsampling in its first two blocks.
  generator, discriminator = _build((32, 32, 3), width=256, d_width=128, latent_dim=128)
  g_params = variable_shapes(generator, jnp.zeros((1, 128)))['params']
  assert g_params['Dense_0']['kernel'] == (128, 16 * 256)
  for i in range(3):
    assert _kernel_shapes(g_params[f'GBlock_{i}'], ('Conv_0', 'Conv_1', 'Conv_2')) == [
        (3, 3, 256, 256), (3, 3, 256, 256), (1, 1, 256, 256)]
  assert g_params['Conv_0']['kernel'] == (3, 3, 256, 3)
  d_params = variable_shapes(discriminator, jnp.zeros((1, 32, 32, 3)))['params']
  assert _kernel_shapes(d_params['DBlock_0'], ('Conv_0', 'Conv_1', 'Conv_2')) == [
      (3, 3, 3, 128), (3, 3, 128, 128), (1, 1, 3, 128)]
  assert 'Conv_2' in d_params['DBlock_1']  # downsampling: a 1x1 shortcut
  assert [sorted(d_params[f'DBlock_{i}']) for i in (2, 3)] == [['Conv_0', 'Conv_1']] * 2
  # sngan_64: G from 1024 channels at 4x4 halving to 64; D from 64 doubling to 1024, all of
  # its five blocks downsampling, the hidden width of each its input's.
  generator, discriminator = _build((64, 64, 3), width=64, width_growth=2,
                                    d_blocks_without_downsampling=0, latent_dim=128)
  g_params = variable_shapes(generator, jnp.zeros((1, 128)))['params']
  assert g_params['Dense_0']['kernel'] == (128, 16 * 1024)
  for i, (cin, cout) in enumerate([(1024, 512), (512, 256), (256, 128), (128, 64)]):
    assert _kernel_shapes(g_params[f'GBlock_{i}'], ('Conv_0', 'Conv_1', 'Conv_2')) == [
        (3, 3, cin, cout), (3, 3, cout, cout), (1, 1, cin, cout)]
  assert g_params['Conv_0']['kernel'] == (3, 3, 64, 3)
  d_params = variable_shapes(discriminator, jnp.zeros((1, 64, 64, 3)))['params']
  assert _kernel_shapes(d_params['DBlock_0'], ('Conv_0', 'Conv_1', 'Conv_2')) == [
      (3, 3, 3, 64), (3, 3, 64, 64), (1, 1, 3, 64)]
  for i, (cin, cout) in enumerate([(64, 128), (128, 256), (256, 512), (512, 1024)], 1):
    assert _kernel_shapes(d_params[f'DBlock_{i}'], ('Conv_0', 'Conv_1', 'Conv_2')) == [
        (3, 3, cin, cin), (3, 3, cin, cout), (1, 1, cin, cout)]
  assert d_params['ProjectionHead_0']['linear']['kernel'] == (1024, 1)


def spectrally_normalized_weights(variables):
  """The parameter paths that spectral norm divides by a sigma it keeps in batch_stats."""
  paths = set()
  for path in flax.traverse_util.flatten_dict(variables.get('batch_stats', {})):
    if path[-1].endswith('/sigma'):
      wrapper, name = path[:-1], path[-1].split('/')[:-1]
      paths.add(wrapper[:-1] + tuple(name))  # SpectralNorm_i sits beside the layer it wraps
  return paths


@pytest.mark.parametrize('num_classes', [0, 10])
def test_spectral_norm_on_every_discriminator_weight_and_none_in_the_generator(num_classes):
  generator, discriminator = _build((32, 32, 3), num_classes, width=8, latent_dim=5)
  labels = jnp.zeros((1,), jnp.int32)
  d_vars = variable_shapes(discriminator, jnp.zeros((1, 32, 32, 3)), labels)
  weights = {path for path in flax.traverse_util.flatten_dict(d_vars['params'])
             if path[-1] in ('kernel', 'embedding')}
  assert len(weights) == 3 + 3 + 2 + 2 + 1 + (num_classes > 0)
  assert spectrally_normalized_weights(d_vars) == weights
  assert not spectrally_normalized_weights(variable_shapes(generator, jnp.zeros((1, 5)), labels))
  _, discriminator = _build((32, 32, 3), num_classes, width=8, spectral_norm=False)
  assert 'batch_stats' not in variable_shapes(discriminator, jnp.zeros((1, 32, 32, 3)), labels)


def test_conditional_generator_output_depends_on_the_label():
  generator = resnet.ResNetGenerator((16, 16, 1), width=8, num_classes=3)
  z = jnp.repeat(jax.random.normal(jax.random.key(1), (1, 4)), 3, axis=0)
  variables = generator.init(jax.random.key(0), z, jnp.zeros(3, jnp.int32), train=False)
  # Every class starts with scale 1 and shift 0; give each its own.
  params = flax.traverse_util.flatten_dict(variables['params'])
  for i, path in enumerate(params):
    if path[-2].startswith('ConditionalBatchNorm'):
      params[path] = params[path] + 0.5 * jax.random.normal(jax.random.key(i), params[path].shape)
  variables = {**variables, 'params': flax.traverse_util.unflatten_dict(params)}
  # Outside training each example is normalised on its own, by the running averages.
  images = generator.apply(variables, z, jnp.array([0, 1, 1]), train=False)
  # Equal inputs in two rows of one batch: equal up to the rounding of the row's position in
  # the CPU's matmul tiles.
  np.testing.assert_allclose(images[1], images[2], rtol=1e-6, atol=1e-6)
  assert np.abs(images[0] - images[1]).max() > 1e-2


def test_unconditional_models_ignore_labels():
  generator, discriminator = _build((16, 16, 1), width=8, latent_dim=4)
  z = jax.random.normal(jax.random.key(1), (2, 4))
  g_vars = generator.init(jax.random.key(0), z, train=False)
  images = generator.apply(g_vars, z, train=False)
  # Exact: ignored labels leave the traced program as it is.
  np.testing.assert_array_equal(generator.apply(g_vars, z, jnp.array([3, 1]), train=False),
                                images)
  d_vars = discriminator.init(jax.random.key(0), images, train=False)
  np.testing.assert_array_equal(discriminator.apply(d_vars, images, jnp.array([3, 1]),
                                                    train=False),
                                discriminator.apply(d_vars, images, train=False))


def test_projection_changes_the_logit_by_the_class_embedding_times_pooled_features():
  discriminator = resnet.ResNetDiscriminator(width=8, num_classes=3)
  x = jax.random.normal(jax.random.key(1), (4, 16, 16, 1))
  labels = jnp.array([0, 2, 1, 2])
  variables = discriminator.init(jax.random.key(0), x, labels, train=False)
  logits, state = discriminator.apply(variables, x, labels, train=False,
                                      capture_intermediates=True)
  captured = state['intermediates']
  h = np.sum(np.maximum(captured['DBlock_2']['__call__'][0], 0), axis=(1, 2))  # ReLU, sum
  linear = captured['ProjectionHead_0']['linear']['__call__'][0][:, 0]
  embedded = captured['ProjectionHead_0']['embed']['__call__'][0]
  np.testing.assert_allclose(logits - linear, np.sum(embedded * h, axis=1), rtol=1e-5, atol=1e-5)
  # The embedding is the class's row, spectrally normalised: one positive factor for all.
  ratio = embedded / variables['params']['ProjectionHead_0']['embed']['embedding'][labels]
  np.testing.assert_allclose(ratio, np.full_like(ratio, ratio[0, 0]), rtol=1e-5)
  assert 0 < ratio[0, 0] and np.abs(np.sum(embedded * h, axis=1)).max() > 1e-3


@pytest.mark.parametrize('resolution', [8, 16])
def test_self_attention_at_the_configured_resolution(resolution):
  generator, discriminator = _build((32, 32, 3), width=8, latent_dim=5,
                                    attention_resolution=resolution)
  z = jnp.zeros((1, 5))
  _, g_state = jax.eval_shape(lambda: generator.apply(
      generator.init(jax.random.key(0), z), z, train=False, capture_intermediates=True))
  attention = [name for name in g_state['intermediates'] if name.startswith('SelfAttention')]
  assert attention == ['SelfAttention_0']
  assert g_state['intermediates']['SelfAttention_0']['__call__'][0].shape[1] == resolution
  x = jnp.zeros((1, 32, 32, 3))
  _, d_state = jax.eval_shape(lambda: discriminator.apply(
      discriminator.init(jax.random.key(0), x), x, train=False, capture_intermediates=True))
  attention = [name for name in d_state['intermediates'] if name.startswith('SelfAttention')]
  assert attention == ['SelfAttention_0']  # once, though D has three blocks at 8x8
  assert d_state['intermediates']['SelfAttention_0']['__call__'][0].shape[1] == resolution


def test_mixed_precision_keeps_float32_parameters_and_outputs():
  generator, discriminator = _build((16, 16, 1), 3, width=8, latent_dim=4,
                                    compute_dtype='bfloat16', attention_resolution=8)
  z, labels = jnp.zeros((2, 4)), jnp.zeros((2,), jnp.int32)
  g_vars = jax.eval_shape(generator.init, jax.random.key(0), z, labels)
  assert {v.dtype for v in jax.tree.leaves(g_vars)} == {jnp.dtype('float32')}
  images = jax.eval_shape(lambda v: generator.apply(v, z, labels, train=False), g_vars)
  d_vars = jax.eval_shape(discriminator.init, jax.random.key(0), images, labels)
  logits = jax.eval_shape(lambda v, x: discriminator.apply(v, x, labels, train=False), d_vars,
                          images)
  assert images.dtype == logits.dtype == jnp.float32


@pytest.mark.parametrize('name', ['resnet', 'biggan'])
def test_conv_implementation_changes_neither_parameters_nor_function(name, monkeypatch,
                                                                    fast_compile):
  # Chunks of one example at 8x8 and 16x16, where 'auto' chunks the kernel gradient on CPU.
  monkeypatch.setattr(layers, 'KERNEL_GRAD_POSITIONS', 64)
  z, labels = jax.random.normal(jax.random.key(1), (2, 6)), jnp.array([0, 2])

  def build(implementation):
    config = _config(name=name, width=24, latent_dim=6, attention_resolution=8,
                     conv_implementation=implementation)
    generator, discriminator = models.MODELS[name](config, (16, 16, 3), 3)
    assert generator.conv_implementation == discriminator.conv_implementation == implementation
    return generator, discriminator

  def init(implementation):
    generator, discriminator = build(implementation)
    return (lambda: generator.init(jax.random.key(0), z, labels, train=False),
            lambda: discriminator.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)), labels,
                                       train=False))

  shapes = jax.tree.map(np.shape, [jax.eval_shape(f) for f in init('xla')])
  for implementation in ('matmul', 'auto'):
    assert jax.tree.map(np.shape, [jax.eval_shape(f) for f in init(implementation)]) == shapes
  g_vars, d_vars = (jax.jit(f)() for f in init('xla'))

  def run(implementation):
    generator, discriminator = build(implementation)

    def loss(g_params, d_params):
      images, _ = generator.apply({**g_vars, 'params': g_params}, z, labels,
                                  mutable=['batch_stats'])
      logits, _ = discriminator.apply({**d_vars, 'params': d_params}, images, labels,
                                      mutable=['batch_stats'])
      return jnp.sum(logits * jnp.array([1.0, -2.0]))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(g_vars['params'], d_vars['params'])

  # 'auto' on CPU: 1x1 convolutions as matmuls, 3x3 ones as XLA's with chunked kernel
  # gradients; tests/test_layers.py checks each layer's implementations one by one.
  expected, expected_grads = run('xla')
  value, grads = run('auto')
  np.testing.assert_allclose(value, expected, rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4),
               grads, expected_grads)


@pytest.mark.parametrize('shape,model,match', [
    ((28, 28, 1), {}, 'image_size=32'),
    ((32, 32, 3), {'d_blocks_without_downsampling': 4}, 'at most 3'),
    ((32, 32, 3), {'attention_resolution': 32}, '8, 16'),
    ((32, 32, 3), {'attention_resolution': 8, 'd_blocks_without_downsampling': 3}, r'\(16\)'),
])
def test_layouts_that_cannot_be_built_are_user_errors(shape, model, match):
  with pytest.raises(UserError, match=match):
    models.check_data_shape(_config(**model), shape)

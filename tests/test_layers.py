"""Tests of gan_jax.layers: the convolutions against direct loops over their definitions, the
ResNet families' layers against nn.BatchNorm and numpy."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import layers

IMPLEMENTATIONS = ('matmul', 'xla', 'auto')
# (batch, height, width, cin, cout)
SHAPES = [(1, 1, 1, 1, 1), (2, 3, 5, 3, 4), (3, 4, 4, 5, 2), (1, 6, 2, 2, 7)]


def reference_conv_transpose(x, kernel, bias=None):
  """torch.nn.ConvTranspose2d(k=4, stride=2, padding=1) by definition, NHWC.

  out[:, 2i - 1 + kh, 2j - 1 + kw] += x[:, i, j] @ kernel[kh, kw].
  """
  n, h, w, _ = x.shape
  out = np.zeros((n, 2 * h, 2 * w, kernel.shape[-1]))
  for i in range(h):
    for j in range(w):
      for kh in range(4):
        for kw in range(4):
          oh, ow = 2 * i - 1 + kh, 2 * j - 1 + kw
          if 0 <= oh < 2 * h and 0 <= ow < 2 * w:
            out[:, oh, ow] += x[:, i, j].astype(np.float64) @ kernel[kh, kw]
  return out if bias is None else out + bias


def reference_conv(x, kernel, bias=None):
  """torch.nn.Conv2d(k=4, stride=2, padding=1) by definition, NHWC.

  out[:, i, j] = sum over kh, kw of x[:, 2i - 1 + kh, 2j - 1 + kw] @ kernel[kh, kw].
  """
  n, h, w, _ = x.shape
  out = np.zeros((n, h // 2, w // 2, kernel.shape[-1]))
  for i in range(h // 2):
    for j in range(w // 2):
      for kh in range(4):
        for kw in range(4):
          ih, iw = 2 * i - 1 + kh, 2 * j - 1 + kw
          if 0 <= ih < h and 0 <= iw < w:
            out[:, i, j] += x[:, ih, iw].astype(np.float64) @ kernel[kh, kw]
  return out if bias is None else out + bias


def _random(shape, seed):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(cin, cout, use_bias, seed):
  params = {'kernel': _random((4, 4, cin, cout), seed)}
  if use_bias:
    params['bias'] = _random((cout,), seed + 1)
  return {'params': params}


# (batch, height, width, cin, cout), even sides
DOWN_SHAPES = [(1, 2, 2, 1, 1), (2, 4, 6, 3, 4), (3, 8, 8, 5, 2), (1, 6, 2, 2, 17)]
REFERENCE_CASES = ([(layers.UpConv, reference_conv_transpose, shape) for shape in SHAPES]
                   + [(layers.DownConv, reference_conv, shape) for shape in DOWN_SHAPES])


@pytest.mark.parametrize('use_bias', [False, True])
@pytest.mark.parametrize('layer,reference,shape', REFERENCE_CASES)
def test_matches_reference(layer, reference, shape, use_bias):
  n, h, w, cin, cout = shape
  x = _random((n, h, w, cin), 0)
  params = _params(cin, cout, use_bias, 1)
  expected = reference(x, *params['params'].values())
  for implementation in IMPLEMENTATIONS:
    module = layer(cout, use_bias=use_bias, implementation=implementation)
    np.testing.assert_allclose(module.apply(params, x), expected, rtol=1e-5, atol=1e-5,
                               err_msg=implementation)


def _outputs_and_grads(layer, shape, scale, implementation, dtype=jnp.float32):
  """The layer's output on a random input, and the gradients of its (float32) product with a
  random cotangent for the parameters and the input."""
  n, h, w, cin, cout = shape
  x = _random((n, h, w, cin), 0)
  params = _params(cin, cout, True, 1)
  cotangent = _random((n, int(scale * h), int(scale * w), cout), 3)
  module = layer(cout, implementation=implementation, dtype=dtype)
  loss = lambda p, x: jnp.sum(module.apply(p, x).astype(jnp.float32) * cotangent)
  return module.apply(params, x), jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)


@pytest.mark.parametrize('layer,shape,scale', [
    (layers.UpConv, SHAPES[1], 2), (layers.UpConv, SHAPES[3], 2),
    (layers.DownConv, DOWN_SHAPES[1], 0.5), (layers.DownConv, DOWN_SHAPES[3], 0.5),
    (layers.DownConv, (2, 32, 34, 16, 3), 0.5)])  # the input gradient's sub-pixel form
def test_gradients_agree(layer, shape, scale):
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4),
               _outputs_and_grads(layer, shape, scale, 'matmul')[1],
               _outputs_and_grads(layer, shape, scale, 'xla')[1])


@pytest.mark.parametrize('layer,shape,scale', [
    (layers.UpConv, (2, 4, 6, 24, 20), 2), (layers.DownConv, (2, 8, 6, 24, 20), 0.5)])
def test_bfloat16_matmuls_and_their_gradients_track_float32s(layer, shape, scale):
  # bf16 operands (and float32 accumulation) in the forward pass and in both gradients, the
  # custom ones included: within a few bf16 roundings (2^-8 relative) of float32's, with
  # float32 kernel gradients for the float32 parameters.
  y16, grads16 = _outputs_and_grads(layer, shape, scale, 'matmul', jnp.bfloat16)
  y32, grads32 = _outputs_and_grads(layer, shape, scale, 'matmul')
  assert y16.dtype == jnp.bfloat16
  assert grads16[0]['params']['kernel'].dtype == jnp.float32
  for low, high in zip(jax.tree.leaves((y16, grads16)), jax.tree.leaves((y32, grads32))):
    scale_of = np.abs(np.asarray(high)).max()
    np.testing.assert_allclose(np.asarray(low, np.float32), high, atol=0.03 * scale_of)


@pytest.mark.parametrize('use_bias', [False, True])
@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_shapes_and_parameter_count(implementation, use_bias):
  cin, cout = 6, 5
  x = jnp.zeros((2, 7, 3, cin))
  module = layers.UpConv(cout, use_bias=use_bias, implementation=implementation)
  variables = module.init(jax.random.key(0), x)
  assert module.apply(variables, x).shape == (2, 14, 6, cout)
  assert variables['params']['kernel'].shape == (4, 4, cin, cout)
  count = sum(p.size for p in jax.tree.leaves(variables))
  assert count == 16 * cin * cout + use_bias * cout


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_mixed_precision(layer, implementation):
  x = jnp.ones((1, 4, 4, 3))
  module = layer(2, dtype=jnp.bfloat16, implementation=implementation)
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert module.apply(variables, x).dtype == jnp.bfloat16


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
def test_unknown_implementation(layer):
  with pytest.raises(ValueError, match='implementation'):
    layer(2, implementation='fft').init(jax.random.key(0), jnp.ones((1, 2, 2, 1)))


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
def test_auto_takes_matmuls_on_cpu_for_wide_layers_only(layer):
  x = jnp.ones((1, 4, 4, 8))

  def program(features):  # the jaxpr's text, custom VJPs' inner programs included
    module = layer(features)
    return str(jax.make_jaxpr(module.apply)(module.init(jax.random.key(0), x), x))

  assert jax.default_backend() == 'cpu'
  assert 'dot_general' in program(16) and 'conv_general_dilated' not in program(16)
  assert 'conv_general_dilated' in program(3)


def _batch_norm(x, scale, bias, train=True):
  """nn.BatchNorm with the given scale and shift (the models' momentum), and its batch_stats."""
  norm = nn.BatchNorm(use_running_average=not train, momentum=0.9)
  variables = {'params': {'scale': scale, 'bias': bias},
               'batch_stats': {'mean': np.zeros_like(scale), 'var': np.ones_like(scale)}}
  return norm.apply(variables, x, mutable=['batch_stats'])


@pytest.mark.parametrize('train', [True, False])
def test_conditional_batch_norm_per_class_is_batch_norm_with_its_classs_scale_and_shift(train):
  num_classes, features = 3, 5
  x = 3.0 + 2.0 * _random((6, 4, 4, features), 0)
  labels = np.array([0, 2, 1, 2, 0, 2])
  scale, bias = 1 + _random((num_classes, features), 1), _random((num_classes, features), 2)
  norm = layers.ConditionalBatchNorm(num_classes)
  variables = norm.init(jax.random.key(0), x, labels, train=False)
  variables = {**variables, 'params': {'scale': scale, 'bias': bias}}
  y, updates = norm.apply(variables, x, labels, train=train, mutable=['batch_stats'])
  for label in range(num_classes):
    expected, expected_updates = _batch_norm(x, scale[label], bias[label], train)
    np.testing.assert_allclose(y[labels == label], expected[labels == label],
                               rtol=1e-5, atol=1e-5)
    # The statistics are the whole batch's, whatever the classes.
    jax.tree.map(np.testing.assert_allclose, updates['batch_stats']['BatchNorm_0'],
                 expected_updates['batch_stats'])


def test_conditional_batch_norm_without_conditioning_is_batch_norm():
  x = _random((4, 3, 3, 2), 0)
  scale, bias = 1 + _random((2,), 1), _random((2,), 2)
  norm = layers.ConditionalBatchNorm()
  variables = norm.init(jax.random.key(0), x, train=False)
  assert jax.tree.map(np.shape, variables['params']) == {'scale': (2,), 'bias': (2,)}
  y, _ = norm.apply({**variables, 'params': {'scale': scale, 'bias': bias}}, x,
                    mutable=['batch_stats'])
  np.testing.assert_allclose(y, _batch_norm(x, scale, bias)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('spectral_norm', [False, True])
def test_conditional_batch_norm_from_a_vector_is_biggans_ccbn(spectral_norm):
  # BigGAN-PyTorch's ccbn: batch norm without affine, times 1 + gain(c), plus bias(c).
  x, condition = 2.0 + _random((4, 3, 3, 5), 0), _random((4, 7), 1)
  w_gain, w_bias = 0.1 * _random((7, 5), 2), 0.1 * _random((7, 5), 3)
  norm = layers.ConditionalBatchNorm(spectral_norm=spectral_norm)
  variables = norm.init(jax.random.key(0), x, condition=condition, train=False)
  variables = {**variables, 'params': {'gain': {'kernel': w_gain}, 'bias': {'kernel': w_bias}}}
  y, updates = norm.apply(variables, x, condition=condition, mutable=['batch_stats'])
  if spectral_norm:  # the maps are divided by their largest singular value
    sigma = lambda w: np.linalg.svd(w, compute_uv=False)[0]
    w_gain, w_bias = w_gain / sigma(w_gain), w_bias / sigma(w_bias)
    for _ in range(30):  # power iteration, one step per training pass
      y, updates = norm.apply({**variables, **updates}, x, condition=condition,
                              mutable=['batch_stats'])
  normalized = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
  expected = (normalized * (1 + condition @ w_gain)[:, None, None]
              + (condition @ w_bias)[:, None, None])
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def reference_attention(x, theta, phi, g, o, gamma):
  """BigGAN-PyTorch's layers.Attention in numpy, NHWC, from [cin, cout] 1x1-conv matrices."""
  n, h, w, _ = x.shape
  x = x.astype(np.float64)

  def pool(v):  # 2x2 max pooling, then the positions flattened
    return v.reshape(n, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4)).reshape(n, h * w // 4, -1)

  queries, keys, values = (x @ theta).reshape(n, h * w, -1), pool(x @ phi), pool(x @ g)
  logits = queries @ keys.transpose(0, 2, 1)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  return x + gamma * ((weights @ values) @ o).reshape(x.shape)


def test_self_attention_starts_as_identity_and_matches_reference():
  x = _random((2, 4, 6, 16), 0)
  attention = layers.SelfAttention()
  variables = attention.init(jax.random.key(0), x)
  shapes = {name: variables['params'][name]['kernel'].shape for name in ('theta', 'phi', 'g', 'o')}
  assert shapes == {'theta': (1, 1, 16, 2), 'phi': (1, 1, 16, 2), 'g': (1, 1, 16, 8),
                    'o': (1, 1, 8, 16)}
  np.testing.assert_array_equal(attention.apply(variables, x), x)  # gamma starts at 0
  params = {name: {'kernel': _random(shape, seed)}
            for seed, (name, shape) in enumerate(shapes.items(), 1)}
  params['gamma'] = np.float32(0.7)
  y = attention.apply({'params': params}, x)
  assert np.abs(y - x).max() > 0.1
  expected = reference_attention(x, *(params[name]['kernel'][0, 0] for name in shapes), 0.7)
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_self_attention_spectral_norm_wraps_its_four_convolutions():
  x = _random((1, 4, 4, 8), 0)
  variables = layers.SelfAttention(spectral_norm=True).init(jax.random.key(0), x, train=False)
  sigmas = [key for stats in variables['batch_stats'].values() for key in stats
            if key.endswith('/sigma')]
  assert sorted(sigmas) == ['g/kernel/sigma', 'o/kernel/sigma', 'phi/kernel/sigma',
                            'theta/kernel/sigma']


def test_projection_head_adds_the_inner_product_of_class_embedding_and_features():
  num_classes, features = 4, 6
  h, labels = _random((5, features), 0), np.array([3, 0, 1, 3, 2])
  params = {'linear': {'kernel': _random((features, 1), 1), 'bias': _random((1,), 2)},
            'embed': {'embedding': _random((num_classes, features), 3)}}
  head = layers.ProjectionHead(num_classes)
  logits = head.apply({'params': params}, h, labels)
  linear = h @ params['linear']['kernel'][:, 0] + params['linear']['bias'][0]
  projection = np.sum(params['embed']['embedding'][labels] * h, axis=1)
  np.testing.assert_allclose(logits - linear, projection, rtol=1e-5, atol=1e-5)
  assert logits.shape == (5,) and logits.dtype == jnp.float32
  unconditional = layers.ProjectionHead().apply({'params': {'linear': params['linear']}}, h)
  np.testing.assert_allclose(unconditional, linear, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='labels'):
    head.apply({'params': params}, h)


# (batch, height, width, cin, cout), use_bias: odd sides, one and many channels, > 16 outputs
# (on CPU 'auto' runs (5, 3, 6, 5, 20) with its kernel gradient in chunks of 2, 2 and 1
# examples, and (4, 2, 2, 6, 17) as a matmul)
CONV_CASES = [((1, 1, 1, 1, 1), True), ((3, 5, 7, 3, 4), False), ((5, 3, 6, 5, 20), True),
              ((4, 2, 2, 6, 17), False)]


def _conv_grads(module, variables, x, cotangent):
  loss = lambda v, x: jnp.sum(module.apply(v, x) * cotangent)
  return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x)


@pytest.mark.parametrize('size', [1, 3, 5])
@pytest.mark.parametrize('shape,use_bias', CONV_CASES)
def test_conv_equals_nn_conv_with_its_parameters_and_gradients(shape, use_bias, size,
                                                               monkeypatch):
  monkeypatch.setattr(layers, 'KERNEL_GRAD_POSITIONS', 36)  # chunks of 2 examples of 3x6
  n, h, w, cin, cout = shape
  x, cotangent = _random((n, h, w, cin), 0), _random((n, h, w, cout), 1)
  reference = nn.Conv(cout, (size, size), padding='SAME', use_bias=use_bias)
  variables = reference.init(jax.random.key(0), x)
  variables = jax.tree.map(lambda v: _random(v.shape, 2), variables)  # a nonzero bias too
  expected, expected_grads = reference.apply(variables, x), _conv_grads(reference, variables,
                                                                        x, cotangent)
  for implementation in IMPLEMENTATIONS:
    module = layers.Conv(cout, size, use_bias=use_bias, implementation=implementation)
    assert (jax.tree.map(np.shape, module.init(jax.random.key(0), x))
            == jax.tree.map(np.shape, variables))
    np.testing.assert_allclose(module.apply(variables, x), expected, rtol=1e-5, atol=1e-5,
                               err_msg=implementation)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4,
                                                         err_msg=implementation),
                 _conv_grads(module, variables, x, cotangent), expected_grads)


def test_conv_second_order_gradients_equal_nn_convs(monkeypatch):
  # An R1-style penalty: the gradient of |d out / d x|^2 with respect to the kernel.
  monkeypatch.setattr(layers, 'KERNEL_GRAD_POSITIONS', 4)
  x = _random((3, 4, 5, 2), 0)
  variables = nn.Conv(20, (3, 3)).init(jax.random.key(0), x)

  def penalty_grad(module):
    def penalty(v):
      input_grad = jax.grad(lambda x: jnp.sum(module.apply(v, x) ** 2))(x)
      return jnp.sum(input_grad ** 2)
    return jax.jit(jax.grad(penalty))(variables)

  expected = penalty_grad(nn.Conv(20, (3, 3), padding='SAME'))
  for implementation in IMPLEMENTATIONS:
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3),
                 penalty_grad(layers.Conv(20, 3, implementation=implementation)), expected)


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_spectral_norm_of_conv_equals_spectral_norm_of_nn_conv(implementation):
  x, cotangent = _random((2, 6, 5, 4), 0), _random((2, 6, 5, 24), 1)

  class Wrapped(nn.Module):
    conv: Any

    @nn.compact
    def __call__(self, x, train=True):
      return layers.maybe_spectral_norm(self.conv(), True, x, train)

  reference = Wrapped(lambda: nn.Conv(24, (3, 3), padding='SAME'))
  module = Wrapped(lambda: layers.Conv(24, (3, 3), implementation=implementation))
  variables = reference.init(jax.random.key(0), x, train=False)
  assert (jax.tree.map(np.shape, module.init(jax.random.key(0), x, train=False))
          == jax.tree.map(np.shape, variables))
  assert 'Conv_0/kernel/sigma' in variables['batch_stats']['SpectralNorm_0']
  for train in (False, True):  # the power iteration's state advances when training
    y, stats = module.apply(variables, x, train=train, mutable=['batch_stats'])
    expected, expected_stats = reference.apply(variables, x, train=train, mutable=['batch_stats'])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 stats, expected_stats)

  def grads(wrapped):
    loss = lambda p, x: jnp.sum(wrapped.apply({**variables, 'params': p}, x,
                                              mutable=['batch_stats'])[0] * cotangent)
    return jax.grad(loss, argnums=(0, 1))(variables['params'], x)

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4),
               grads(module), grads(reference))


def test_conv_auto_on_cpu_by_kernel_size_width_and_map_size():
  def primitives(features, size, side, batch=4):
    x = jnp.ones((batch, side, side, 8))
    module = layers.Conv(features, size)
    variables = module.init(jax.random.key(0), x)
    loss = lambda v: jnp.sum(module.apply(v, x))
    return {equation.primitive.name for equation in jax.make_jaxpr(loss)(variables).eqns}

  assert jax.default_backend() == 'cpu'
  assert 'conv_general_dilated' not in primitives(32, 1, 8)  # 1x1: a dot
  assert 'conv_general_dilated' not in primitives(32, 3, 4)  # 4x4 maps: patches and a dot
  assert 'conv_general_dilated' in primitives(8, 3, 32)  # narrow: XLA's, XLA's gradients
  assert 'custom_vjp_call' not in primitives(8, 3, 32)
  assert 'custom_vjp_call' in primitives(32, 3, 32)  # kernel gradient in chunks
  assert 'custom_vjp_call' not in primitives(32, 3, 32, batch=2)  # one chunk: XLA's own


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_conv_mixed_precision(implementation, monkeypatch):
  monkeypatch.setattr(layers, 'KERNEL_GRAD_POSITIONS', 4)
  x = jnp.ones((3, 4, 4, 3))
  module = layers.Conv(20, 3, dtype=jnp.bfloat16, implementation=implementation)
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert module.apply(variables, x).dtype == jnp.bfloat16
  grads = jax.grad(lambda v: jnp.sum(module.apply(v, x).astype(jnp.float32)))(variables)
  assert grads['params']['kernel'].dtype == jnp.float32


@pytest.mark.parametrize('kwargs,match', [({'implementation': 'fft'}, 'implementation'),
                                          ({'kernel_size': 2}, 'odd'),
                                          ({'kernel_size': (3, 1)}, 'square')])
def test_conv_rejects_what_it_does_not_compute(kwargs, match):
  with pytest.raises(ValueError, match=match):
    layers.Conv(2, **kwargs).init(jax.random.key(0), jnp.ones((1, 2, 2, 1)))

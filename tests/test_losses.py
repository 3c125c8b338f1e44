"""Losses against hand-computed values and the theory of GANs."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import configs, losses, models
from gan_jax.errors import UserError

LOG4 = math.log(4.0)


@pytest.mark.parametrize('name', ['minimax', 'non_saturating'])
def test_d_loss_is_log4_at_equilibrium(name):
  half = jnp.zeros(16)  # logit 0 <=> D(x) = 1/2
  d_loss, _ = losses.get(name)(real_logits=half, fake_logits=half)
  np.testing.assert_allclose(d_loss, LOG4, rtol=1e-6)
  np.testing.assert_allclose(losses.value_function(half, half), -LOG4, rtol=1e-6)


# Logits 2 (real) and -1 (fake): D(x) = s(2), D(G(z)) = s(-1), with s the sigmoid.
_S2, _SM1 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))
HAND_COMPUTED = {
    'minimax': (-math.log(_S2) - math.log(1 - _SM1), math.log(1 - _SM1)),
    'non_saturating': (-math.log(_S2) - math.log(1 - _SM1), -math.log(_SM1)),
    'wasserstein': (-1.0 - 2.0, 1.0),
    'hinge': (max(0, 1 - 2.0) + max(0, 1 - 1.0), 1.0),
    'least_squares': (0.5 * ((2.0 - 1) ** 2 + 1.0), 0.5 * (-1.0 - 1) ** 2),
}


@pytest.mark.parametrize('name', sorted(HAND_COMPUTED))
def test_losses_match_hand_computed_values(name):
  d_loss, g_loss = losses.get(name)(jnp.full(4, 2.0), jnp.full(4, -1.0))
  np.testing.assert_allclose([d_loss, g_loss], HAND_COMPUTED[name], rtol=1e-6)


def test_losses_are_stable_for_saturated_logits():
  for name in losses.LOSSES:
    d_loss, g_loss = losses.get(name)(jnp.array([1e9, -1e9]), jnp.array([-1e9, 1e9]))
    assert np.isfinite(d_loss) and np.isfinite(g_loss), name


def test_unknown_loss_lists_valid_names():
  with pytest.raises(UserError, match='non_saturating'):
    losses.get('nonsaturating')


def test_saturating_g_gradient_vanishes_where_d_is_confident():
  confident = jnp.full(8, -10.0)  # D(G(z)) = 4.5e-5: D rejects the samples
  grad = lambda name: jax.grad(losses.get(name).generator)(confident)
  saturating, non_saturating = np.abs(grad('minimax')).sum(), np.abs(grad('non_saturating')).sum()
  assert saturating < 1e-4  # d/dl log(1 - s(l)) = -s(l)
  assert non_saturating > 0.99  # d/dl -log s(l) = s(l) - 1
  # Where D is fooled (D(G(z)) near 1), the roles swap; both share the fixed point.
  fooled = jnp.full(8, 10.0)
  assert np.abs(jax.grad(losses.minimax.generator)(fooled)).sum() > 0.99


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
  direction = jnp.array([0.6, 0.8])  # f(x) = <w, x> with ||w|| = 1 is 1-Lipschitz, |grad| = 1
  critic = lambda x: x @ direction
  real, fake = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 2))
  alpha = jax.random.uniform(jax.random.PRNGKey(1), (32,))
  assert losses.gradient_penalty(critic, real, fake, alpha) < 1e-10
  # A critic of slope 3 pays (3 - 1)^2 = 4.
  np.testing.assert_allclose(
      losses.gradient_penalty(lambda x: 3 * critic(x), real, fake, alpha), 4.0, rtol=1e-5)


def test_gradient_penalty_is_per_example_on_images():
  # f(x) = sum of pixels * c: per example gradient norm c * sqrt(#pixels).
  real = jnp.ones((4, 2, 2, 1))
  c = 0.25
  penalty = losses.gradient_penalty(lambda x: c * x.sum(axis=(1, 2, 3)), real, -real,
                                    jnp.full(4, 0.5))
  np.testing.assert_allclose(penalty, (c * 2.0 - 1.0) ** 2, rtol=1e-6)


def test_optimal_discriminator_against_perfect_generator_is_half():
  """With p_g = p_data, the trained D goes to 1/2 everywhere and V(D, G) to -log 4."""
  data = lambda key: 0.5 * jax.random.normal(key, (1024, 2)) + jnp.array([1.0, -1.0])
  _, discriminator = models.build(_mlp_config(), (2,))
  params = discriminator.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  # Start D far from 1/2 (D = s(2) = 0.88 on average) so that training has to get there.
  params['params']['Dense_2']['bias'] = jnp.array([2.0])
  probe = data(jax.random.PRNGKey(10_000))
  assert jnp.mean(jax.nn.sigmoid(discriminator.apply(params, probe))) > 0.8
  tx = optax.adam(optax.linear_schedule(1e-3, 0.0, 1000))  # decays so D settles
  opt_state = tx.init(params)

  @jax.jit
  def update(params, opt_state, key):
    real_key, fake_key = jax.random.split(key)
    real, fake = data(real_key), data(fake_key)  # G(z) has exactly the data distribution
    loss = lambda p: losses.minimax.discriminator(discriminator.apply(p, real),
                                                  discriminator.apply(p, fake))
    grads = jax.grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  for step in range(1000):
    params, opt_state = update(params, opt_state, jax.random.PRNGKey(step))
  logits = discriminator.apply(params, probe)
  d = jax.nn.sigmoid(logits)
  np.testing.assert_allclose(jnp.mean(d), 0.5, atol=0.01)
  assert jnp.median(jnp.abs(d - 0.5)) < 0.02  # D* = p_data / (p_data + p_g) = 1/2 on the data
  other = data(jax.random.PRNGKey(10_001))
  np.testing.assert_allclose(losses.value_function(logits, discriminator.apply(params, other)),
                             -LOG4, atol=0.005)


def _mlp_config():
  config = configs.default()
  config.model.name, config.model.width, config.model.mlp_layers = 'mlp', 32, 2
  config.dataset = 'ring8'
  return config


def test_r1_penalty_of_linear_critic_is_squared_slope():
  w = jnp.array([0.5, -2.0, 1.0])  # grad_x <w, x> = w everywhere: R1 = ||w||^2 = 5.25
  for batch in (1, 7):
    real = np.random.default_rng(batch).normal(size=(batch, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.r1_penalty(lambda x: x @ w, real), 5.25, rtol=1e-6)


def test_r1_penalty_is_per_example_on_images():
  # f(x) = 0.5 ||x||^2 per image: grad_x f = x, so R1 = E ||x||^2.
  real = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype(np.float32)
  critic = lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(losses.r1_penalty(critic, real),
                             jnp.mean(jnp.sum(real ** 2, axis=(1, 2, 3))), rtol=1e-5)


def test_dragan_perturbs_within_half_a_std_and_unit_slope_pays_nothing():
  real = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  perturbed = losses.dragan_perturbation(jax.random.PRNGKey(1), real)
  noise, half_std = perturbed - real, 0.5 * jnp.std(real)  # std over the whole batch, ~3
  assert jnp.all(noise >= 0) and jnp.all(noise <= half_std)
  assert jnp.min(noise) < 0.05 * half_std and jnp.max(noise) > 0.95 * half_std  # U[0, 1)
  critic = lambda x: x @ jnp.array([0.6, 0.8])  # ||w|| = 1
  alpha = jax.random.uniform(jax.random.PRNGKey(2), (32,))
  assert losses.gradient_penalty(critic, real, perturbed, alpha) < 1e-10


def test_orthogonal_penalty_is_zero_for_orthogonal_kernels_and_vectors():
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(4, 4)).astype(np.float32))
  assert losses.orthogonal_penalty(jnp.asarray(q)) < 1e-10
  # A [fan_in 5, out 3] kernel with orthonormal columns: its 3 filters are orthonormal
  # (W W^T = I_3), though its rows are not (q q^T is a rank-3 projection, not diagonal).
  q, _ = np.linalg.qr(rng.normal(size=(5, 3)).astype(np.float32))
  assert losses.orthogonal_penalty({'kernel': jnp.asarray(q)}) < 1e-10
  assert losses.orthogonal_penalty(jnp.asarray(q.T)) > 0.1  # as [fan_in 3, out 5]: 5 filters in 3-D
  assert losses.orthogonal_penalty({'bias': jnp.arange(4.0), 'scale': jnp.ones(3)}) == 0


def test_orthogonal_penalty_by_hand():
  # Dense kernel [fan_in, out] = [[1, 1], [0, 1]]: filters W = kernel^T = [[1, 0], [1, 1]],
  # W W^T = [[1, 1], [1, 2]]; off-diagonal 1 and 1: penalty (1^2 + 1^2) / 2 = 1.
  dense = jnp.array([[1.0, 1.0], [0.0, 1.0]])
  np.testing.assert_allclose(losses.orthogonal_penalty(dense), 1.0)
  # Conv kernel [kh 2, kw 2, in 1, out 2]: filter 0 is all ones, filter 1 is [[1, 2], [0, 0]].
  # W = [[1, 1, 1, 1], [1, 2, 0, 0]], W W^T = [[4, 3], [3, 5]]: penalty (3^2 + 3^2) / 2 = 9.
  conv = jnp.stack([jnp.ones((2, 2)), jnp.array([[1.0, 2.0], [0.0, 0.0]])], axis=-1)[:, :, None]
  np.testing.assert_allclose(losses.orthogonal_penalty(conv), 9.0)
  # Over a tree: the kernels' penalties add, the biases are skipped.
  params = {'Dense_0': {'kernel': dense, 'bias': jnp.ones(2)}, 'Conv_0': {'kernel': conv}}
  np.testing.assert_allclose(losses.orthogonal_penalty(params), 10.0)


def test_orthogonal_penalty_gradient_is_biggan_pytorchs_2MW():
  # BigGAN-PyTorch's utils.ortho adds 2 M W to each weight's gradient, M = W W^T ⊙ (1 - I).
  # Filters W [2, 3] = [[1, 0, 1], [1, 1, 0]]: W W^T = [[2, 1], [1, 2]], M = [[0, 1], [1, 0]],
  # M W = [[1, 1, 0], [1, 0, 1]] (the penalty of eq. 3 itself would give 4 M W).
  w = jnp.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
  kernel = w.T  # a Dense kernel [fan_in 3, out 2]
  np.testing.assert_allclose(jax.grad(losses.orthogonal_penalty)(kernel),
                             2.0 * np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]).T)
  bias_grad = jax.grad(losses.orthogonal_penalty)({'kernel': kernel, 'bias': jnp.ones(2)})['bias']
  np.testing.assert_array_equal(bias_grad, 0.0)  # 1-D parameters are skipped, as in utils.ortho


def _biggan_pytorch_ortho_gradient(weight: np.ndarray) -> np.ndarray:
  """utils.ortho's gradient of one weight in PyTorch's layout [out, in, kh, kw], in numpy."""
  w = weight.reshape(weight.shape[0], -1)
  return (2.0 * ((w @ w.T) * (1.0 - np.eye(len(w)))) @ w).reshape(weight.shape)


def test_orthogonal_penalty_gradient_on_conv_kernels_is_biggan_pytorchs():
  # Flax's [kh, kw, in, out] kernel is PyTorch's [out, in, kh, kw] transposed; utils.ortho
  # flattens it to [out, in * kh * kw], gan_jax to [out, kh * kw * in]: the same filters.
  kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 5))
  expected = _biggan_pytorch_ortho_gradient(kernel.transpose(3, 2, 0, 1)).transpose(2, 3, 1, 0)
  grad = jax.grad(losses.orthogonal_penalty)(jnp.asarray(kernel, jnp.float32))
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-4)

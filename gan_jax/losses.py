"""GAN losses as pure functions of the discriminator's logits.

Each loss maps (real_logits, fake_logits) to (d_loss, g_loss). The discriminator's
output is a logit; D(x) = sigmoid(logit) for the sigmoid losses, and all log
terms go through `softplus` for numerical stability:
log D(x) = -softplus(-logit), log(1 - D(x)) = -softplus(logit).
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.errors import unknown_name_error


class GANLoss(NamedTuple):
  """A loss as its two halves: the generator's half needs only fake logits."""
  discriminator: Callable[[jax.Array, jax.Array], jax.Array]  # (real, fake) -> d_loss
  generator: Callable[[jax.Array], jax.Array]  # fake -> g_loss

  def __call__(self, real_logits: jax.Array, fake_logits: jax.Array):
    """Returns (d_loss, g_loss)."""
    return self.discriminator(real_logits, fake_logits), self.generator(fake_logits)


def _sigmoid_cross_entropy_d(real_logits, fake_logits):
  # -V(D, G) = -E log D(x) - E log(1 - D(G(z))), minimised by D.
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


minimax = GANLoss(
    discriminator=_sigmoid_cross_entropy_d,
    # G minimises E log(1 - D(G(z))) (Goodfellow et al., 2014). Saturates: the gradient
    # vanishes where D confidently rejects the samples, i.e. early in training.
    generator=lambda fake: -jnp.mean(jax.nn.softplus(fake)),
)

non_saturating = GANLoss(
    discriminator=_sigmoid_cross_entropy_d,
    # G maximises E log D(G(z)): the same fixed point, strong gradients where D wins.
    generator=lambda fake: jnp.mean(jax.nn.softplus(-fake)),
)

wasserstein = GANLoss(
    # The critic maximises E f(x) - E f(G(z)); keep it Lipschitz with `gradient_penalty`
    # (Gulrajani et al., 2017) or spectral norm.
    discriminator=lambda real, fake: jnp.mean(fake) - jnp.mean(real),
    generator=lambda fake: -jnp.mean(fake),
)

hinge = GANLoss(
    # Lim & Ye (2017); Miyato et al. (2018) use it with spectral norm.
    discriminator=lambda real, fake: (jnp.mean(jax.nn.relu(1.0 - real))
                                      + jnp.mean(jax.nn.relu(1.0 + fake))),
    generator=lambda fake: -jnp.mean(fake),
)

least_squares = GANLoss(
    # Mao et al. (2017), targets a=0 (fake), b=1 (real), c=1 (what G wants).
    discriminator=lambda real, fake: 0.5 * (jnp.mean((real - 1.0) ** 2) + jnp.mean(fake ** 2)),
    generator=lambda fake: 0.5 * jnp.mean((fake - 1.0) ** 2),
)

LOSSES = {
    'minimax': minimax,
    'non_saturating': non_saturating,
    'wasserstein': wasserstein,
    'hinge': hinge,
    'least_squares': least_squares,
}
# Losses whose logits are meant as D(x) = sigmoid(logit): probabilities and V(D, G) are reported.
SIGMOID_LOSSES = ('minimax', 'non_saturating')


def get(name: str) -> GANLoss:
  """Returns the loss called `name`; raises UserError listing the valid names."""
  if name not in LOSSES:
    raise unknown_name_error('loss', name, LOSSES)
  return LOSSES[name]


def value_function(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """V(D, G) = E log D(x) + E log(1 - D(G(z))); -log 4 at the equilibrium D = 1/2."""
  return -_sigmoid_cross_entropy_d(real_logits, fake_logits)


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array,
                     fake: jax.Array, alpha: jax.Array) -> jax.Array:
  """WGAN-GP penalty E (||grad_x f(x_hat)|| - 1)^2 on interpolates of real and fake.

  Args:
    critic: maps a batch [B, ...] to logits [B]; each logit depends on its own example
      only (no batch norm), so the gradient of their sum gives per-example gradients. With
      DiffAugment it is D after the augmentation, and `real`, `fake` the images before it.
    real: a batch of real data [B, ...].
    fake: a batch of generated data, same shape.
    alpha: interpolation weights [B] in [0, 1].
  Returns:
    The penalty, a scalar (multiply by lambda in the loss).

  Gulrajani et al., 2017, "Improved Training of Wasserstein GANs".
  """
  alpha = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
  interpolates = alpha * real + (1.0 - alpha) * fake
  norms = jnp.sqrt(_squared_gradient_norms(critic, interpolates) + 1e-12)
  return jnp.mean((norms - 1.0) ** 2)


def dragan_perturbation(key: jax.Array, real: jax.Array) -> jax.Array:
  """real + 0.5 * std(real) * U[0, 1) noise: the points near the data that DRAGAN penalises.

  The DRAGAN penalty is `gradient_penalty(critic, real, dragan_perturbation(key, real),
  alpha)`: (||grad f|| - 1)^2 on interpolates between real data and its perturbation, so
  the gradient norm is held near 1 only around the data. The std is over the whole batch and
  the noise uniform, as in the authors' code (the paper writes Gaussian noise N(0, cI)).

  Kodali et al., 2017, "On Convergence and Stability of GANs".
  """
  noise = jax.random.uniform(key, real.shape, real.dtype)
  return real + 0.5 * jnp.std(real) * noise


def drift_penalty(real_logits: jax.Array) -> jax.Array:
  """ProGAN's drift penalty E[D(x)^2] on real logits (Karras et al., 2018): a Wasserstein
  critic's loss is blind to a constant added to every output; this keeps them near 0.
  Multiply by epsilon (0.001) in D's loss."""
  return jnp.mean(jnp.square(real_logits))


def path_lengths(synthesize: Callable[[jax.Array], jax.Array], ws: jax.Array,
                 key: jax.Array) -> jax.Array:
  """StyleGAN2's path lengths ||J_w^T y|| per example (Karras et al., 2020).

  J_w is the Jacobian of the images `synthesize(ws)` [B, H, W, C] with respect to ws
  [B, num_ws, w_dim], y random images N(0, 1) / sqrt(H * W); the squared norms are averaged
  over the num_ws layers. The path-length regulariser penalises their spread around a
  running mean, so that a fixed step in W changes the image by a fixed amount wherever it
  is taken.
  """
  images, vjp = jax.vjp(synthesize, ws)
  y = jax.random.normal(key, images.shape, images.dtype) / jnp.sqrt(
      images.shape[1] * images.shape[2])
  grads, = vjp(y)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 penalty E ||grad_x D(x)||^2 on real data.

  Penalising D's gradient on the data alone makes training locally convergent to the
  equilibrium p_g = p_data, where D is flat on the data; unregularised training need not be.

  Args:
    critic: maps a batch [B, ...] to logits [B], each from its own example (as in
      `gradient_penalty`); the penalty is on the logit, not on sigmoid(logit). With
      DiffAugment it is D after the augmentation, and `real` the images before it.
    real: a batch of real data [B, ...].
  Returns:
    The penalty, a scalar: multiply by gamma / 2 in D's loss.

  Mescheder et al., 2018, "Which Training Methods for GANs do actually Converge?".
  """
  return jnp.mean(_squared_gradient_norms(critic, real))


def _squared_gradient_norms(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """[B] squared norms ||grad_x critic(x)[b]||^2: one grad of the logits' sum gives all B."""
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x)
  return jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


def orthogonal_penalty(params: Any) -> jax.Array:
  """BigGAN's orthogonal regularisation, as its code applies it: sum over kernels of
  ||W W^T ⊙ (1 - I)||_F^2 / 2.

  Pushes the filters of every kernel (every parameter with ndim >= 2) towards orthogonality
  without constraining their norms. A Flax kernel [..., fan_in, out] is read as W [out,
  fan_in], one row per output unit, as BigGAN's code reads PyTorch's [out, in, ...] kernels
  (a conv kernel's [out, kh * kw * in] is PyTorch's [out, in * kh * kw] with its columns
  permuted: the same W W^T, and the same gradient, permuted alike); W W^T is the Gram matrix
  of the filters, and only its off-diagonal M = W W^T ⊙ (1 - I) is penalised. 1-D
  parameters (biases, norm scales) are skipped, as in that code; pass a subtree to skip more
  (BigGAN skips G's shared class embedding). Multiply by beta (1e-4 in BigGAN) in the loss.

  Half of the paper's eq. 3, so that its gradient is 2 M W, the gradient BigGAN-PyTorch's
  `utils.ortho` adds to each weight (eq. 3 as written would give 4 M W): a config's beta
  has the strength it has in BigGAN-PyTorch.

  Brock et al., 2019, "Large Scale GAN Training for High Fidelity Natural Image
  Synthesis", eq. 3; github.com/ajbrock/BigGAN-PyTorch, utils.py, `ortho`.
  """
  penalty = jnp.zeros(())
  for kernel in jax.tree_util.tree_leaves(params):
    if kernel.ndim >= 2:
      w = kernel.reshape(-1, kernel.shape[-1]).T
      gram = w @ w.T
      penalty += 0.5 * jnp.sum((gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))) ** 2)
  return penalty

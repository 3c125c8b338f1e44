"""Convolutions as matmuls over image patches (im2col), with their gradients: what
layers.convolutions' 'matmul' implementation computes.

Every matmul asks for float32 accumulation (_dot), which is also what keeps a bf16 matmul in
bf16 on XLA:CPU's bf16 units, and has a custom gradient that does the same. DownConv's
input gradient takes the faster of two forms (_down_conv_matmul_bwd); README.md's
Performance section has the measurements behind each choice.
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp


def windows(x: jax.Array, size: int, stride: int, out_height: int,
             out_width: int) -> jax.Array:
  """[N, H, W, C] -> [N, out_height, out_width, size * size * C]: each window's taps, row-major."""
  # Materialised once: otherwise XLA fuses the producer (batch norm, activation) into every
  # window's slice and computes it size * size times.
  x = jax.lax.optimization_barrier(x)
  return jnp.concatenate(
      [x[:, i:i + stride * out_height:stride, j:j + stride * out_width:stride]
       for i in range(size) for j in range(size)], axis=-1)


def pad(x: jax.Array, border: int = 1) -> jax.Array:
  return jnp.pad(x, ((0, 0), (border, border), (border, border), (0, 0)))


def _dot(a: jax.Array, b: jax.Array, contracting: tuple[tuple[int], tuple[int]],
         precision: Any) -> jax.Array:
  """a and b contracted over the given axes, accumulated and returned in float32.

  Asking for a float32 result of bfloat16 operands is what lets XLA:CPU keep a bf16 dot in
  bf16 (YNNPACK, with AMX or AVX-512 bf16 units): a bf16 dot with a bf16 result is
  computed in float32, 5x slower on a Sapphire Rapids core (README.md, Performance).
  """
  return jax.lax.dot_general(a, b, (contracting, ((), ())), precision=precision,
                             preferred_element_type=jnp.float32)


def _kernel_grad(rows: jax.Array, grads: jax.Array, precision: Any) -> jax.Array:
  """rows [..., K] and grads [..., N] -> rows^T grads [K, N] in float32, summed over all
  leading axes: a matmul's kernel gradient."""
  rows = rows.reshape(-1, rows.shape[-1])
  grads = grads.reshape(-1, grads.shape[-1])
  if rows.dtype == jnp.bfloat16:
    # XLA:CPU's bf16 dots run in bf16 only with the left operand's contraction last, and
    # XLA folds a plain transpose into the dot; a transpose through a unit axis is laid
    # out in memory instead (bf16 DCGAN-64 step 1.2x faster; in float32 it costs more).
    m, k = rows.shape
    return _dot(rows.reshape(m, k, 1).transpose(1, 2, 0).reshape(k, m), grads,
                ((1,), (0,)), precision)
  return _dot(rows, grads, ((0,), (0,)), precision)


def _vary_like(a: jax.Array, b: jax.Array) -> jax.Array:
  """a, marked as varying over the shard_map axes b varies over (for a custom VJP, whose
  cotangents must have their primals' types; the mark's transpose sums over devices)."""
  missing = tuple(sorted(jax.typeof(b).manual_axis_type.varying -
                         jax.typeof(a).manual_axis_type.varying))
  return jax.lax.pcast(a, missing, to='varying') if missing else a


def matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """x [..., K] @ kernel [K, N] in x's dtype, accumulated in float32, with gradients that
  are float32-accumulated matmuls of x's dtype too (see _dot)."""
  return _matmul(_vary_like(x, kernel), _vary_like(kernel, x), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul(x: jax.Array, kernel: jax.Array, precision: Any) -> jax.Array:
  return _dot(x, kernel, ((x.ndim - 1,), (0,)), precision).astype(x.dtype)


def _matmul_fwd(x, kernel, precision):
  return _matmul(x, kernel, precision), (x, kernel)


def _matmul_bwd(precision, residuals, dy):
  x, kernel = residuals
  dy = dy.astype(x.dtype)
  dx = _dot(dy, kernel, ((dy.ndim - 1,), (1,)), precision).astype(x.dtype)
  return dx, _kernel_grad(x, dy, precision).astype(kernel.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _down_patches(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, H / 2, W / 2, 16 C]: the windows of a 4x4, stride-2, padding-1
  convolution."""
  _, h, w, _ = x.shape
  return windows(pad(x), 4, 2, h // 2, w // 2)


def _up_taps(kernel: jax.Array) -> jax.Array:
  """[4, 4, cin, cout] -> [4 cin, 4 cout]: the transposed convolution's kernel as the
  sub-pixel matmul's, rows (s, r, ci) like 2x2 patches, columns (a, b, co)."""
  cin, cout = kernel.shape[2:]
  # Output row 2q - 1 + a reads padded input row q + s through kernel row 2 + a - 2s:
  # reversed rows split as [s, 1 - a]. Reversing and reshaping, not gathering, keeps it a
  # copy XLA fuses (a gather of the 8 MB kernel took 12 ms per use).
  taps = kernel[::-1, ::-1].reshape(2, 2, 2, 2, cin, cout)[:, ::-1, :, ::-1]  # [s, a, r, b]
  return taps.transpose(0, 2, 4, 1, 3, 5).reshape(4 * cin, 4 * cout)


def _up_from_subpixels(y: jax.Array) -> jax.Array:
  """[N, H + 1, W + 1, 4 C] sub-pixel blocks -> [N, 2H, 2W, C]: depth-to-space, cropped."""
  n, h1, w1, c4 = y.shape
  c = c4 // 4
  y = y.reshape(n, h1, w1, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h1, 2 * w1, c)[:, 1:-1, 1:-1]


def _up_patches(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, H + 1, W + 1, 4 C]: the 2x2 windows of x padded by one."""
  _, h, w, _ = x.shape
  return windows(pad(x), 2, 1, h + 1, w + 1)


def up_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """UpConv's function as one matmul over 2x2 windows and a depth-to-space (UpConv)."""
  return _up_from_subpixels(matmul(_up_patches(x), _up_taps(kernel), precision))


def down_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """DownConv's function as one matmul over 4x4 windows, with a custom gradient."""
  return _down_conv_matmul(_vary_like(x, kernel), _vary_like(kernel, x), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _down_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any) -> jax.Array:
  return _down_conv_matmul_fwd(x, kernel, precision)[0]


def _down_conv_matmul_fwd(x, kernel, precision):
  patches = _down_patches(x)
  y = _dot(patches, kernel.reshape(-1, kernel.shape[-1]), ((3,), (0,)), precision)
  return y.astype(x.dtype), (patches, kernel)


def _down_conv_matmul_bwd(precision, residuals, dy):
  """The kernel gradient is the windows' matmul's. The input gradient is the transposed
  convolution of dy (the kernel's channels swapped), in whichever of two forms is faster
  (measured on XLA:CPU, README.md): UpConv's sub-pixel matmul on the small map, whose
  4x-channel patches of dy are half the size of autodiff's window gradients, or autodiff's
  16 window gradients padded and summed at full size. The sub-pixel form costs
  (s + 1)^2 / s^2 of the work on an s x s map and has only 4 cin columns, so it pays in
  float32 on maps of 16 x 16 or more and in bf16 (whose matmuls are fast and whose padded
  sums are not) from 16 input channels on."""
  patches, kernel = residuals
  dtype = patches.dtype
  dy = dy.astype(dtype)
  n, s, _, cin16 = patches.shape
  cin = cin16 // 16
  dkernel = _kernel_grad(patches, dy, precision).reshape(kernel.shape)
  if cin >= 16 and (dtype == jnp.bfloat16 or s >= 16):
    taps = _up_taps(kernel.swapaxes(2, 3).astype(dtype))
    dx = _up_from_subpixels(_dot(_up_patches(dy), taps, ((3,), (0,)), precision))
  else:
    dpatches = _dot(dy, kernel.reshape(cin16, -1).astype(dtype), ((3,), (1,)), precision)
    x = _vary_like(jnp.zeros((n, 2 * s, 2 * patches.shape[2], cin), dtype), dy)
    dx, = jax.vjp(_down_patches, x)[1](dpatches.astype(dtype))
  return dx.astype(dtype), dkernel.astype(kernel.dtype)


_down_conv_matmul.defvjp(_down_conv_matmul_fwd, _down_conv_matmul_bwd)

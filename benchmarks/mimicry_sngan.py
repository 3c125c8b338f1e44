r"""Mimicry's SNGAN-32 in PyTorch: the peer of gan_jax's ResNet family (resnet_sngan.py).

  python benchmarks/mimicry_sngan.py speed --variant eager --batch_size 64 --steps 20
  python benchmarks/mimicry_sngan.py train --minutes 30 --snapshot_minutes 10,20 \
      --output runs/mimicry_sngan/samples.npy

Run it with a Python that has torch and torch-mimicry (benchmarks/compare.sh PEER=mimicry and
benchmarks/quality_compare.sh PEER=mimicry make one: their virtual environment gets
`pip install --no-deps torch-mimicry==0.1.16`). Mimicry's package imports its training loop
(tensorboard), metrics (TensorFlow) and data sets (torchvision) when it is imported, but its
networks need torch alone: this script imports torch_mimicry.nets and torch_mimicry.modules
from the installed folder without running torch_mimicry/__init__.py (import_mimicry), so no
other dependency is installed.

`speed` times training iterations on synthetic data and prints one JSON line with the keys of
`python -m gan_jax.benchmark` (ms_per_step; images_per_second counting batch_size * n_critic
real images per iteration, as gan_jax.benchmark does), plus framework, variant, the torch and
Mimicry versions and the threads. Its real batches are n_critic random batches in [-1, 1]
made once on the device, one per D update, like gan_jax.benchmark's --synthetic. Variants (of
benchmarks/pytorch_dcgan.py, which names them): eager (float32, as Mimicry trains),
channels_last, bf16 (torch.autocast(bfloat16) around the forward passes and losses; float32
weights and optimizer). torch.compile is not offered.

`train` trains on the Fashion-MNIST training images for --minutes of wall clock (reading and
resizing the data count) and writes --num_samples images of one set of latents, float32 NHWC
[N, 32, 32, 1] in [0, 1] (`python -m gan_jax.evaluate --samples` reads them), at the end and
at each of --snapshot_minutes (samples_10min.npy, ... beside --output; the clock stops while
it writes them), by benchmarks/pytorch_dcgan28.py's loop (torch_training.py). The images
are those gan_jax's input pipeline trains resnet_sngan.py on: each 28x28 image resized to
32x32 by Pillow's bilinear filter into uint8 (gan_jax.data.transform.fit_image; resize_like_pillow
redoes Pillow's fixed-point two-pass arithmetic in numpy, byte for byte, so the PyTorch
environment needs no Pillow), then x / 127.5 - 1 in float32 (input_pipeline._scale), no
flips; shuffled each epoch by a seeded numpy generator, the last partial batch dropped.
Samples come from G in eval mode (BN's running statistics), as Mimicry's evaluation does.

The networks are Mimicry's own (torch_mimicry/nets/sngan/sngan_32.py): SNGANGenerator32
(nz=128, ngf=256, three up-sampling GBlocks, BN-ReLU-conv3x3-tanh) and SNGANDiscriminator32
(ndf=128: DBlockOptimized, one downsampling and two plain DBlocks, ReLU, sum pooling,
SNLinear), spectrally normalised by torch.nn.utils.spectral_norm (one power iteration per
forward pass in train mode), with Mimicry's initialisation, hinge loss
(torch_mimicry/modules/losses.py) and Adam(2e-4, betas=(0.0, 0.9)) for both. Mimicry's
32x32 networks are RGB only (3 channels hard-coded); for --nc 1, Fashion-MNIST's grey
images, G's last convolution and D's first block are rebuilt with 1 channel, as Mimicry
builds and initialises them.

One iteration is what Mimicry's Trainer.train does per global step with n_dis=5
(torch_mimicry/training/trainer.py; netD.train_step and netG.train_step of
torch_mimicry/nets/gan/gan.py, scaler=None), in its order, calling the networks' own
generate_images and compute_gan_loss:
  * 5 D updates, each: zero D's gradients; D on a fresh real batch; G on fresh latents
    (train mode, so G's BN statistics move, with autograd recording G's pass, then
    .detach()); D on those fakes; hinge loss; backward; Adam step. D runs twice per update,
    so its spectral-norm vectors take two power iterations per update.
  * then 1 G update: zero G's gradients; G on fresh latents (a 6th G pass); D on them (one
    more power iteration: 11 per iteration); -mean(D); backward through D and G (D's weight
    gradients are computed too, and cleared by the next D update); Adam step for G.
What differs from gan_jax's step for experiments/resnet_sngan.py (gan_jax/train_step.py):
  * G passes: gan_jax makes 5 per iteration, its G update reusing the last D update's fake
    batch (the generator pass's VJP is kept); Mimicry makes 6, its G update on fresh latents.
  * D passes: gan_jax's D sees real and fake concatenated in one pass per update (one power
    iteration per update), Mimicry's two passes; gan_jax's G update differentiates D only
    with respect to its input, Mimicry's also computes D's weight gradients.
  * G's upsampling: Mimicry's GBlock is bilinear (align_corners=False), gan_jax's (and
    SNGAN's chainer code) nearest; Mimicry's 1x1 shortcut convolves after upsampling,
    gan_jax's before (the same map, 4x fewer positions).
  * Logging: Mimicry's D update fetches three scalars (errD, D(x), D(G(z))) with .item(),
    host syncs gan_jax does not make; they are left out, as benchmarks/pytorch_dcgan.py
    leaves out its reference's; --item_sync puts them back.
  * Schedule: Mimicry's README example decays both learning rates linearly over 100,000
    steps; like resnet_sngan.py (constant) there is no decay here. resnet_sngan.py keeps an
    EMA of G from step 1,000 on, a copy of G before then; Mimicry keeps none.
  * BN's running variance (what eval-mode samples use): PyTorch keeps the unbiased batch
    variance (n / (n - 1)), flax the biased one; the momentum (0.1, flax's 0.9) and epsilon
    (1e-5) agree.
  * Data loading: Mimicry's Trainer keeps the last partial batch of an epoch; dropped here.

This file imports only torch, numpy, the standard library and torch_mimicry's networks;
gan_jax never imports it.
"""
import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import sys
import time
import types

import numpy as np

try:
  import torch
  from torch import nn
except ImportError:
  sys.exit('Error: PyTorch is not installed in this Python; run benchmarks/compare.sh '
           'PEER=mimicry (it installs torch and torch-mimicry in their own virtual '
           'environment) or `pip install torch` elsewhere.')

# Beside this file: its folder is on sys.path.
from pytorch_dcgan import (VARIANTS, non_negative, positive, result_line, select_device,
                           time_iterations, variant_autocast)
from torch_training import (EpochBatches, add_training_arguments, check_training_arguments,
                            load_images, positive_float, train_for_minutes, training_result)

MIMICRY_VERSION = '0.1.16'  # the release this script's account of its step was checked against
MIMICRY_VARIANTS = ('eager', 'channels_last', 'bf16')  # of pytorch_dcgan.VARIANTS
NZ = 128  # SNGANGenerator32's latent size
NGF = 256
NDF = 128
N_CRITIC = 5  # Mimicry's n_dis for SNGAN
IMAGE_SIZE = 32
LR = 2e-4
BETAS = (0.0, 0.9)
PILLOW_PRECISION_BITS = 22  # Pillow's fixed point for 8-bit images (Resample.c: 32 - 8 - 2)


def import_mimicry() -> tuple[types.ModuleType, types.ModuleType]:
  """Mimicry's sngan_32 and resblocks modules, imported without torch_mimicry/__init__.py.

  That __init__ imports Mimicry's training loop, metrics and data sets, which need
  tensorboard, TensorFlow and torchvision; the networks need torch alone. So a bare package
  object stands for torch_mimicry, and Python imports only torch_mimicry.nets and
  torch_mimicry.modules from its folder.
  """
  if 'torch_mimicry' not in sys.modules:
    spec = importlib.util.find_spec('torch_mimicry')
    if spec is None:
      sys.exit(f'Error: torch_mimicry is not installed in this Python ({sys.executable}); '
               f'`pip install --no-deps torch-mimicry=={MIMICRY_VERSION}` (its networks need '
               'torch alone), or run benchmarks/compare.sh PEER=mimicry, which installs it.')
    package = types.ModuleType('torch_mimicry')
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules['torch_mimicry'] = package
  from torch_mimicry.modules import resblocks  # pylint: disable=import-outside-toplevel
  from torch_mimicry.nets.sngan import sngan_32  # pylint: disable=import-outside-toplevel
  return sngan_32, resblocks


def mimicry_version() -> str | None:
  try:
    return importlib.metadata.version('torch-mimicry')
  except importlib.metadata.PackageNotFoundError:
    return None


def build_networks(nc: int, ngf: int, ndf: int, device: torch.device,
                   memory_format: torch.memory_format = torch.contiguous_format
                   ) -> tuple[nn.Module, nn.Module]:
  """Mimicry's SNGANGenerator32 and SNGANDiscriminator32 for images of `nc` channels."""
  sngan_32, resblocks = import_mimicry()
  net_g = sngan_32.SNGANGenerator32(nz=NZ, ngf=ngf)
  net_d = sngan_32.SNGANDiscriminator32(ndf=ndf)
  if nc != 3:
    # RGB is hard-coded in both: rebuild the layers that touch the image, as Mimicry
    # builds and initialises them (sngan_32.py, resblocks.DBlockOptimized).
    net_g.c5 = nn.Conv2d(ngf, nc, 3, 1, padding=1)
    nn.init.xavier_uniform_(net_g.c5.weight.data, 1.0)
    net_d.block1 = resblocks.DBlockOptimized(nc, ndf)
  return (net_g.to(device).to(memory_format=memory_format),
          net_d.to(device).to(memory_format=memory_format))


def adam(net: nn.Module, lr: float = LR) -> torch.optim.Adam:
  """Mimicry's SNGAN optimizer (its README's example): Adam(2e-4, betas=(0.0, 0.9))."""
  return torch.optim.Adam(net.parameters(), lr, betas=BETAS)


def make_iteration(net_g: nn.Module, net_d: nn.Module, opt_g: torch.optim.Optimizer,
                   opt_d: torch.optim.Optimizer, next_real, batch_size: int, n_critic: int,
                   device: torch.device, autocast=None, item_sync: bool = False):
  """One iteration of Mimicry's Trainer.train: n_critic D updates, each on next_real(), then
  one G update (the module docstring says what each does). Returns the last D update's and
  the G update's losses."""
  autocast = autocast or contextlib.nullcontext

  def d_update(real: torch.Tensor) -> torch.Tensor:
    # netD.train_step, scaler=None.
    net_d.zero_grad()
    with autocast():
      output_real = net_d(real)
      fake_images = net_g.generate_images(num_images=batch_size, device=device).detach()
      output_fake = net_d(fake_images)
      # float32 logits: a no-op for eager; bf16 variants keep the loss in float32.
      err_d = net_d.compute_gan_loss(output_real=output_real.float(),
                                     output_fake=output_fake.float())
    err_d.backward()
    opt_d.step()
    if item_sync:  # Mimicry's logging: errD.item() and compute_probs' two .item()s
      err_d.item()
      net_d.compute_probs(output_real=output_real.float(), output_fake=output_fake.float())
    return err_d

  def g_update() -> torch.Tensor:
    # netG.train_step, scaler=None.
    net_g.zero_grad()
    with autocast():
      fake_images = net_g.generate_images(num_images=batch_size, device=device)
      output = net_d(fake_images)
      err_g = net_g.compute_gan_loss(output=output.float())
    err_g.backward()
    opt_g.step()
    return err_g

  def iteration() -> tuple[torch.Tensor, torch.Tensor]:
    for _ in range(n_critic):
      err_d = d_update(next_real())
    return err_d.detach(), g_update().detach()

  return iteration


def run_speed(args: argparse.Namespace, device: torch.device) -> dict:
  """Builds Mimicry's networks and optimizers, times args.steps iterations, returns a dict."""
  variant = VARIANTS[args.variant]
  torch.manual_seed(0)
  torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest algorithms
  memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
  net_g, net_d = build_networks(args.nc, args.ngf, args.ndf, device, memory_format)
  net_g.train()
  net_d.train()
  # n_critic device-resident real batches in [-1, 1], one per D update (like --synthetic).
  reals = [(torch.rand(args.batch_size, args.nc, IMAGE_SIZE, IMAGE_SIZE, device=device) * 2
            - 1).to(memory_format=memory_format) for _ in range(args.n_critic)]
  taken = 0

  def next_real() -> torch.Tensor:
    nonlocal taken
    taken += 1
    return reals[(taken - 1) % args.n_critic]

  iteration = make_iteration(net_g, net_d, adam(net_g), adam(net_d), next_real, args.batch_size,
                             args.n_critic, device, lambda: variant_autocast(variant, device),
                             args.item_sync)
  compile_seconds, seconds_per_step = time_iterations(iteration, args.steps, args.warmup, device)
  return {**result_line(device, args.batch_size, args.n_critic, compile_seconds,
                        seconds_per_step, f'mimicry_sngan:{args.variant}', args.variant),
          'model': 'mimicry_sngan32', 'ngf': args.ngf, 'ndf': args.ndf, 'nc': args.nc,
          'item_sync': args.item_sync, 'torch_version': torch.__version__,
          'mimicry_version': mimicry_version(), 'threads': torch.get_num_threads()}


def _pillow_bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
  """[out_size, in_size] fixed-point weights of Pillow's BILINEAR resize along one axis
  (Resample.c's precompute_coeffs and normalize_coeffs_8bpc), as float64 integers."""
  scale = in_size / out_size
  filter_scale = max(scale, 1.0)
  support = 1.0 * filter_scale  # the bilinear filter's support is 1
  inverse_scale = 1.0 / filter_scale
  weights = np.zeros((out_size, in_size))
  for out in range(out_size):
    center = (out + 0.5) * scale
    first = max(int(center - support + 0.5), 0)  # int() truncates, as C's cast
    stop = min(int(center + support + 0.5), in_size)
    taps = [max(0.0, 1.0 - abs((x - center + 0.5) * inverse_scale)) for x in range(first, stop)]
    total = 0.0
    for tap in taps:  # summed in Pillow's order
      total += tap
    for x, tap in zip(range(first, stop), taps):
      tap = tap / total if total else tap
      weights[out, x] = int(tap * (1 << PILLOW_PRECISION_BITS) + (0.5 if tap >= 0 else -0.5))
  return weights


def resize_like_pillow(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 [N, H, W] images resized to [N, size, size] exactly as Pillow's
  Image.resize(BILINEAR) does for mode 'L' (gan_jax.data.transform.fit_image's upscaling):
  a horizontal pass into uint8, then a vertical one, each summing fixed-point weights with
  rounding. The sums are below 2**31, so float64 matrix products hold them exactly."""
  rows = _pillow_bilinear_weights(images.shape[1], size)
  cols = _pillow_bilinear_weights(images.shape[2], size)

  def to_uint8(sums: np.ndarray) -> np.ndarray:
    shifted = (sums.astype(np.int64) + (1 << (PILLOW_PRECISION_BITS - 1))) >> PILLOW_PRECISION_BITS
    return np.clip(shifted, 0, 255).astype(np.float64)

  out = np.empty((len(images), size, size), np.uint8)
  for i in range(0, len(images), 4096):  # in chunks: float64 copies of 60,000 images are large
    horizontal = to_uint8(images[i:i + 4096].astype(np.float64) @ cols.T)  # [n, H, size]
    out[i:i + 4096] = to_uint8(rows @ horizontal)  # [n, size, size]
  return out


def train(args: argparse.Namespace, device: torch.device) -> dict:
  """Trains for args.minutes (reading and resizing the data included), writes the samples,
  returns a dict."""
  start = time.perf_counter()
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  # One set of latents, from their own seeded stream, for the snapshots and the final samples.
  latents = torch.randn(args.num_samples, NZ, generator=torch.Generator().manual_seed(args.seed))
  images = resize_like_pillow(load_images(args.data_dir), IMAGE_SIZE)
  batches = EpochBatches(torch.from_numpy(images).to(device).unsqueeze(1), args.batch_size, rng)

  def next_real() -> torch.Tensor:
    # gan_jax's input_pipeline._scale: float32 x / 127.5 - 1.
    return batches.next().float() / 127.5 - 1.0

  net_g, net_d = build_networks(1, args.ngf, args.ndf, device)
  net_d.train()
  iteration = make_iteration(net_g, net_d, adam(net_g, args.lr), adam(net_d, args.lr), next_real,
                             args.batch_size, args.n_critic, device, item_sync=args.item_sync)
  run = train_for_minutes(args, device, start, net_g, latents, iteration)
  return {**training_result(args, run, 'mimicry_sngan32', batches.epochs,
                            args.batch_size * args.n_critic, device),
          'n_critic': args.n_critic, 'ngf': args.ngf, 'ndf': args.ndf, 'lr': args.lr,
          'torch_version': torch.__version__, 'mimicry_version': mimicry_version()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  commands = parser.add_subparsers(dest='command', required=True)
  speed = commands.add_parser('speed', help='Time training iterations on synthetic data.')
  speed.add_argument('--variant', choices=MIMICRY_VARIANTS, default='eager')
  speed.add_argument('--batch_size', type=positive, default=64)
  speed.add_argument('--steps', type=positive, default=20, help='Timed iterations.')
  speed.add_argument('--warmup', type=non_negative, default=2, help='Untimed iterations.')
  speed.add_argument('--nc', type=positive, default=1,
                     help='Image channels: 1 like gan_jax\'s Fashion-MNIST, 3 for RGB.')
  speed.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                     help='Default: cuda if available, else cpu.')
  speed.add_argument('--threads', type=positive, default=None,
                     help='torch.set_num_threads; default: leave torch\'s choice.')
  trainer = commands.add_parser('train', help='Train on Fashion-MNIST for a time budget.')
  add_training_arguments(trainer, 'runs/mimicry_sngan/samples.npy')
  trainer.add_argument('--lr', type=positive_float, default=LR,
                       help='Both Adams\' learning rate (Mimicry\'s SNGAN: 2e-4).')
  for command in (speed, trainer):
    command.add_argument('--ngf', type=positive, default=NGF, help='G\'s channels.')
    command.add_argument('--ndf', type=positive, default=NDF, help='D\'s channels.')
    command.add_argument('--n_critic', type=positive, default=N_CRITIC,
                         help='D updates per G update (Mimicry\'s n_dis).')
    command.add_argument('--item_sync', action='store_true',
                         help='Also fetch the three scalars Mimicry logs per D update.')
  args = parser.parse_args()
  if args.command == 'train':
    check_training_arguments(trainer, args)
  device = select_device(args.device, args.threads)
  print(json.dumps((run_speed if args.command == 'speed' else train)(args, device)))


if __name__ == '__main__':
  main()

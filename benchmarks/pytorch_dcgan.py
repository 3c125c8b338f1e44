r"""Times the pytorch/examples DCGAN training iteration: the PyTorch peer of gan_jax.benchmark.

  python benchmarks/pytorch_dcgan.py --variant eager --batch_size 64 --steps 20

Run it with a Python that has torch (benchmarks/compare.sh makes one in its own virtual
environment and runs every variant and batch size next to `python -m gan_jax.benchmark`).
It prints one JSON line with the same keys as `python -m gan_jax.benchmark`, plus
"framework" and "variant".

The models, their initialisation, the loss, the optimizers and the work of one iteration
are those of pytorch/examples `dcgan/main.py` (64x64 images, nz=100, ngf=ndf=64, BCELoss,
Adam(2e-4, betas=(0.5, 0.999))). What differs, on purpose:
  * Data: one random real batch in [-1, 1] made once on the device (like the JAX side's
    `--synthetic`), so the loader and the host-to-device copy are not timed.
  * Logging: the reference's five `.item()` calls per iteration (host syncs for its print)
    are left out, as the JAX side does not fetch metrics per step; `--item_sync` puts them
    back.
  * `--nc` defaults to 1: gan_jax trains on Fashion-MNIST upsampled to 64x64, as the
    reference does with `--dataset mnist` (which sets nc=1).
  * bf16 variants compute the BCE loss in float32 outside autocast: CUDA autocast refuses
    `binary_cross_entropy`, and the reference's Sigmoid + BCELoss pair is kept as it is.

Variants (VARIANTS below; add one by adding an entry):
  eager          float32, contiguous (NCHW), as the reference ships.
  channels_last  models and data in torch.channels_last (NHWC kernels).
  bf16           torch.autocast(bfloat16) on the device; float32 master weights.
  bf16_channels_last  both, eager: PyTorch's fastest without compiling, on a bf16 CPU.
  compile        torch.compile on both networks; the first iteration's time (it compiles)
                 is reported as compile_seconds, far lower once Inductor's on-disk cache
                 (/tmp/torchinductor_$USER) holds these graphs. Needs a C++ compiler on CPU.
  fastest        channels_last + bf16 + compile together.

This file imports only torch and the standard library; gan_jax never imports it.
"""
import argparse
import contextlib
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable

try:
  import torch
  from torch import nn
except ImportError:
  sys.exit('Error: PyTorch is not installed in this Python; run benchmarks/compare.sh (it '
           'installs torch in its own virtual environment) or `pip install torch` elsewhere.')


@dataclasses.dataclass(frozen=True)
class Variant:
  channels_last: bool = False
  bf16: bool = False
  compile: bool = False


VARIANTS = {
    'eager': Variant(),
    'channels_last': Variant(channels_last=True),
    'bf16': Variant(bf16=True),
    'bf16_channels_last': Variant(channels_last=True, bf16=True),
    'compile': Variant(compile=True),
    'fastest': Variant(channels_last=True, bf16=True, compile=True),
}

NZ = 100  # Latent size, as in dcgan/main.py.
NGF = 64
NDF = 64
LR = 2e-4
BETAS = (0.5, 0.999)
REAL_LABEL = 1.0
FAKE_LABEL = 0.0


def weights_init(m: nn.Module) -> None:
  """dcgan/main.py's init: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), bias 0."""
  classname = m.__class__.__name__
  if classname.find('Conv') != -1:
    nn.init.normal_(m.weight, 0.0, 0.02)
  elif classname.find('BatchNorm') != -1:
    nn.init.normal_(m.weight, 1.0, 0.02)
    nn.init.zeros_(m.bias)


class Generator(nn.Module):
  """dcgan/main.py's Generator for 64x64 images (its ngpu>1 data_parallel path left out)."""

  def __init__(self, nc: int):
    super().__init__()
    self.main = nn.Sequential(
        # Input is Z, going into a convolution.
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(NGF * 8),
        nn.ReLU(True),
        # (ngf*8) x 4 x 4
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF * 4),
        nn.ReLU(True),
        # (ngf*4) x 8 x 8
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF * 2),
        nn.ReLU(True),
        # (ngf*2) x 16 x 16
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF),
        nn.ReLU(True),
        # (ngf) x 32 x 32
        nn.ConvTranspose2d(NGF, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
        # (nc) x 64 x 64
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.main(x)


class Discriminator(nn.Module):
  """dcgan/main.py's Discriminator for 64x64 images; outputs one probability per image."""

  def __init__(self, nc: int):
    super().__init__()
    self.main = nn.Sequential(
        # (nc) x 64 x 64
        nn.Conv2d(nc, NDF, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        # (ndf) x 32 x 32
        nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 2),
        nn.LeakyReLU(0.2, inplace=True),
        # (ndf*2) x 16 x 16
        nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 4),
        nn.LeakyReLU(0.2, inplace=True),
        # (ndf*4) x 8 x 8
        nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 8),
        nn.LeakyReLU(0.2, inplace=True),
        # (ndf*8) x 4 x 4
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.main(x).view(-1, 1).squeeze(1)


def _device_kind(device: torch.device) -> str:
  if device.type == 'cuda':
    return torch.cuda.get_device_name(device)
  try:  # platform.processor() is often empty on Linux; /proc/cpuinfo names the model.
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'cpu'


def synchronize(device: torch.device) -> None:
  # CUDA kernels run asynchronously: wait for them before reading the clock.
  if device.type == 'cuda':
    torch.cuda.synchronize(device)


def variant_autocast(variant: Variant, device: torch.device):
  """The context a variant's forward passes run in: bf16 autocast on the device, or none."""
  if variant.bf16:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
  return contextlib.nullcontext()


def time_iterations(iteration: Callable[[], object], steps: int, warmup: int,
                    device: torch.device, compiles: bool = False) -> tuple[float, float]:
  """Runs `iteration` once more first if it `compiles`, then `warmup` times, then times
  `steps` iterations; returns (compile_seconds: that first one's, or 0; seconds per step)."""
  compile_seconds = 0.0
  if compiles:
    start = time.perf_counter()
    iteration()
    synchronize(device)
    compile_seconds = time.perf_counter() - start
  for _ in range(warmup):
    iteration()
  synchronize(device)
  start = time.perf_counter()
  for _ in range(steps):
    iteration()
  synchronize(device)
  return compile_seconds, (time.perf_counter() - start) / steps


def result_line(device: torch.device, batch_size: int, n_critic: int, compile_seconds: float,
                seconds_per_step: float, config: str, variant_name: str) -> dict:
  """The JSON line of a timed PyTorch run, with `python -m gan_jax.benchmark`'s keys."""
  return {
      'device_kind': _device_kind(device),
      'device_count': 1,
      'process_count': 1,
      'global_batch': batch_size,
      'n_critic': n_critic,
      'compile_seconds': compile_seconds,
      'ms_per_step': 1000 * seconds_per_step,
      # Real images the discriminator sees per second: a fresh batch per D update.
      'images_per_second': batch_size * n_critic / seconds_per_step,
      'peak_memory_bytes': (torch.cuda.max_memory_allocated(device)
                            if device.type == 'cuda' else None),
      'mfu': None,
      'flops_per_step': None,
      'synthetic': True,
      'config': config,
      'framework': 'pytorch',
      'variant': variant_name,
  }


def run_benchmark(variant_name: str, batch_size: int, steps: int, warmup: int, nc: int,
                  image_size: int, device: torch.device, item_sync: bool = False) -> dict:
  """Builds the reference's models and optimizers, times `steps` iterations, returns a dict."""
  if image_size != 64:
    raise ValueError('the DCGAN architecture is for 64x64 images only')
  variant = VARIANTS[variant_name]
  torch.manual_seed(0)
  # As in dcgan/main.py: let cuDNN pick the fastest algorithms for these fixed shapes.
  torch.backends.cudnn.benchmark = True
  memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format

  net_g = Generator(nc).to(device)
  net_g.apply(weights_init)
  net_d = Discriminator(nc).to(device)
  net_d.apply(weights_init)
  net_g = net_g.to(memory_format=memory_format)
  net_d = net_d.to(memory_format=memory_format)
  criterion = nn.BCELoss()
  optimizer_d = torch.optim.Adam(net_d.parameters(), lr=LR, betas=BETAS)
  optimizer_g = torch.optim.Adam(net_g.parameters(), lr=LR, betas=BETAS)
  if variant.compile:
    net_g = torch.compile(net_g)
    net_d = torch.compile(net_d)

  # One device-resident real batch in [-1, 1], reused every iteration (like --synthetic).
  real = (torch.rand(batch_size, nc, image_size, image_size, device=device) * 2 - 1).to(
      memory_format=memory_format)

  def autocast():
    return variant_autocast(variant, device)

  def loss(output: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    # float32 outside autocast: CUDA autocast refuses BCELoss; a no-op for float32 outputs.
    return criterion(output.float(), label)

  def iteration() -> None:
    """One iteration of dcgan/main.py's training loop, in its order."""
    # (1) Update D: maximize log(D(x)) + log(1 - D(G(z))). Train with real.
    net_d.zero_grad()
    label = torch.full((batch_size,), REAL_LABEL, dtype=real.dtype, device=device)
    with autocast():
      output = net_d(real)
    err_d_real = loss(output, label)
    err_d_real.backward()
    if item_sync:
      output.mean().item()
    # Train with fake.
    noise = torch.randn(batch_size, NZ, 1, 1, device=device).to(memory_format=memory_format)
    with autocast():
      fake = net_g(noise)
    label.fill_(FAKE_LABEL)
    with autocast():
      output = net_d(fake.detach())
    err_d_fake = loss(output, label)
    err_d_fake.backward()
    if item_sync:
      output.mean().item()
    err_d = err_d_real + err_d_fake
    optimizer_d.step()
    # (2) Update G: maximize log(D(G(z))); fake labels are real for the generator cost.
    net_g.zero_grad()
    label.fill_(REAL_LABEL)
    with autocast():
      output = net_d(fake)
    err_g = loss(output, label)
    err_g.backward()
    if item_sync:
      output.mean().item()
    optimizer_g.step()
    if item_sync:
      err_d.item()
      err_g.item()

  # The first iteration of a compile variant traces and compiles every graph (each D input,
  # G, backwards).
  compile_seconds, seconds_per_step = time_iterations(iteration, steps, warmup, device,
                                                      variant.compile)
  return result_line(device, batch_size, 1, compile_seconds, seconds_per_step,
                     f'pytorch_dcgan:{variant_name}', variant_name)


def select_device(name: str | None, threads: int | None) -> torch.device:
  """The --device to run on (default: cuda if available, else cpu), with --threads set."""
  if name is None:
    name = 'cuda' if torch.cuda.is_available() else 'cpu'
  if name == 'cuda' and not torch.cuda.is_available():
    sys.exit(f'Error: --device=cuda but CUDA is not available to torch {torch.__version__} '
             '(a CPU-only build, or no GPU or driver).')
  if threads is not None:
    torch.set_num_threads(threads)
  return torch.device(name)


def positive(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
  return value


def non_negative(text: str) -> int:
  value = int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
  return value


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--batch_size', type=positive, default=64)
  parser.add_argument('--steps', type=positive, default=20, help='Timed iterations.')
  parser.add_argument('--warmup', type=non_negative, default=2,
                      help='Untimed iterations (after the compiling one, for compile variants).')
  parser.add_argument('--nc', type=positive, default=1,
                      help='Image channels: 1 like gan_jax\'s Fashion-MNIST, 3 for RGB.')
  parser.add_argument('--image_size', type=int, default=64, choices=[64])
  parser.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                      help='Default: cuda if available, else cpu.')
  parser.add_argument('--threads', type=positive, default=None,
                      help='torch.set_num_threads; default: leave torch\'s choice.')
  parser.add_argument('--variant', choices=list(VARIANTS), default='eager')
  parser.add_argument('--item_sync', action='store_true',
                      help='Also fetch the reference\'s five logged scalars per iteration.')
  args = parser.parse_args()

  results = run_benchmark(args.variant, args.batch_size, args.steps, args.warmup, args.nc,
                          args.image_size, select_device(args.device, args.threads),
                          args.item_sync)
  print(json.dumps(results))


if __name__ == '__main__':
  main()

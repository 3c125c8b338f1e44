r"""Trains the TensorFlow tutorial's 28x28 DCGAN in PyTorch for a time budget; saves samples.

  python benchmarks/pytorch_dcgan28.py --minutes 15 --snapshot_minutes 5,10 \
      --output runs/pytorch_dcgan28/samples.npy

Run it with a Python that has torch (benchmarks/compare.sh makes such a virtual
environment). It trains on the Fashion-MNIST training images for `--minutes` of wall-clock
time (reading the data counts), then writes `--num_samples` images from the generator in
eval mode as float32 NHWC [N, 28, 28, 1] in [0, 1], the format `python -m gan_jax.sample`
writes, so gan_jax's evaluator can score this run beside gan_jax's own. At each of
`--snapshot_minutes` it writes the same latents' images the same way beside `--output`
(samples_5min.npy, samples_10min.npy), with the clock stopped while it does, so that
benchmarks/quality_compare.sh can score both frameworks at equal wall clock. It prints one
JSON line at the end, with each snapshot's steps and minutes of training.

The models, their initialisation, the loss and the training step are those of the
TensorFlow DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan), with the Keras 2
defaults it ran under:
  * G: Dense(7*7*256, no bias) -> BN -> LeakyReLU -> reshape -> ConvT(128, 5, stride 1)
    -> BN -> LeakyReLU -> ConvT(64, 5, stride 2) -> BN -> LeakyReLU -> ConvT(1, 5,
    stride 2) -> tanh; every ConvT 'same' and without bias. Latents: 100-d N(0, 1).
  * D: Conv(64, 5, stride 2, 'same') -> LeakyReLU -> Dropout(0.3) -> Conv(128, 5,
    stride 2, 'same') -> LeakyReLU -> Dropout(0.3) -> Flatten -> Dense(1), a logit.
  * LeakyReLU slope 0.3 (Keras 2's default alpha); BatchNormalization momentum 0.99 and
    epsilon 1e-3 (PyTorch momentum 0.01); Glorot-uniform kernels, zero biases, BN scale 1
    and offset 0.
  * TensorFlow's 'same' padding exactly: for the stride-2 convolutions it pads 1 before and
    2 after (PyTorch's symmetric padding=2 would shift the taps by a pixel), and the stride-2
    transposed convolutions are their exact adjoints (padding=1, then the 29th row and
    column cropped), not ConvTranspose2d(padding=2, output_padding=1), which is the same
    shape but a pixel off.
  * Loss: non-saturating, binary cross-entropy on logits (D: real -> 1, fake -> 0; G:
    fake -> 1). One step, as the tutorial's `train_step`: one fresh latent batch, one
    generator pass, D on the real and on the fake batch, both losses from those outputs,
    each network's gradient of its own loss (G's through the not yet updated D, with the
    same dropout masks), then both Adam updates.
What differs, on purpose (from gan_jax's issue "Evaluation", item 6):
  * Adam(2e-4, betas=(0.5, 0.999)) and batch 64, where the tutorial uses Adam(1e-4) with
    Keras' betas (0.9, 0.999) and batch 256.
  * Fashion-MNIST instead of MNIST, shuffled each epoch by a seeded numpy generator, the
    last partial batch dropped (the tutorial keeps it); a wall-clock budget, not 50 epochs.
What differs because it cannot be copied exactly:
  * Adam's epsilon is 1e-7 as in Keras, but Keras adds it to sqrt(v) before the bias
    correction and PyTorch after: the two agree once 1 - 0.999**t is near 1.
  * BN's running variance: PyTorch keeps the unbiased batch variance (n / (n - 1)), Keras'
    BN after the Dense layer the biased one; at batch 64 they differ by 1.6%.
  * Reshape and Flatten order: Keras is NHWC, PyTorch NCHW, so the Dense layers' units are
    permuted relative to Keras'; under random initialisation that is the same model.
  * Random numbers (initialisation, latents, dropout, shuffling) are PyTorch's and numpy's.

This file imports only torch, numpy and the standard library; gan_jax never imports it.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

try:
  import torch
  from torch import nn
  from torch.nn import functional as F
except ImportError:
  sys.exit('Error: PyTorch is not installed in this Python; run benchmarks/compare.sh (it '
           'installs torch in its own virtual environment) or `pip install torch` elsewhere.')

# Beside this file: its folder is on sys.path.
from pytorch_dcgan import positive, select_device, synchronize

NZ = 100  # Latent size, the tutorial's noise_dim.
IMAGE_SIZE = 28
LR = 2e-4
BETAS = (0.5, 0.999)
ADAM_EPS = 1e-7  # Keras' default epsilon.
LEAKY_SLOPE = 0.3  # Keras 2's LeakyReLU() default alpha.
BN_MOMENTUM = 0.01  # Keras momentum 0.99, as PyTorch counts it.
BN_EPS = 1e-3  # Keras' default epsilon.
DROPOUT = 0.3
TRAIN_FILE = 'train-images-idx3-ubyte.gz'
IMAGES_MAGIC = 2051  # IDX: uint8 data with 3 dimensions.


def keras_init(m: nn.Module) -> None:
  """Keras' defaults: Glorot-uniform kernels, zero biases, BN scale 1 and offset 0."""
  if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
    # Glorot-uniform depends on fan_in + fan_out only, so PyTorch's (in, out) order for
    # ConvTranspose2d weights gives Keras' bound.
    nn.init.xavier_uniform_(m.weight)
    if m.bias is not None:
      nn.init.zeros_(m.bias)
  elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
    nn.init.ones_(m.weight)
    nn.init.zeros_(m.bias)


class SameConv2d(nn.Conv2d):
  """Keras Conv2D(padding='same'), stride 2, 5x5: TensorFlow pads 1 before and 2 after."""

  def __init__(self, in_channels: int, out_channels: int):
    super().__init__(in_channels, out_channels, 5, stride=2, padding=0)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return super().forward(F.pad(x, (1, 2, 1, 2)))


class SameConvTranspose2d(nn.ConvTranspose2d):
  """Keras Conv2DTranspose(padding='same'), stride 2, 5x5, no bias: H x W -> 2H x 2W.

  TensorFlow's transposed convolution is the adjoint of its 'same' convolution (which pads
  1 before and 2 after), so input pixel i reaches outputs 2i - 1 + k, k = 0..4: padding=1
  gives those, and the one extra row and column at the end are cropped.
  """

  def __init__(self, in_channels: int, out_channels: int):
    super().__init__(in_channels, out_channels, 5, stride=2, padding=1, bias=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    height, width = x.shape[-2:]
    return super().forward(x)[..., :2 * height, :2 * width]


class Generator(nn.Module):
  """The tutorial's make_generator_model: 100-d latents to 28x28x1 images in [-1, 1]."""

  def __init__(self):
    super().__init__()
    self.dense = nn.Sequential(
        nn.Linear(NZ, 7 * 7 * 256, bias=False),
        nn.BatchNorm1d(7 * 7 * 256, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
    )
    self.convs = nn.Sequential(
        # 256 x 7 x 7
        nn.ConvTranspose2d(256, 128, 5, stride=1, padding=2, bias=False),
        nn.BatchNorm2d(128, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
        # 128 x 7 x 7
        SameConvTranspose2d(128, 64),
        nn.BatchNorm2d(64, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
        # 64 x 14 x 14
        SameConvTranspose2d(64, 1),
        nn.Tanh(),
        # 1 x 28 x 28
    )

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    return self.convs(self.dense(z).view(-1, 256, 7, 7))


class Discriminator(nn.Module):
  """The tutorial's make_discriminator_model: one logit per 28x28x1 image."""

  def __init__(self):
    super().__init__()
    self.main = nn.Sequential(
        # 1 x 28 x 28
        SameConv2d(1, 64),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Dropout(DROPOUT),
        # 64 x 14 x 14
        SameConv2d(64, 128),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Dropout(DROPOUT),
        # 128 x 7 x 7
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1),
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.main(x).squeeze(1)


def load_images(data_dir: str) -> np.ndarray:
  """Reads the Fashion-MNIST training images: uint8 [60000, 28, 28]."""
  path = os.path.join(data_dir, TRAIN_FILE)
  if not os.path.isfile(path):
    sys.exit(f'Error: {path} not found; install Fashion-MNIST with `sudo apt-get install '
             'dataset-fashion-mnist`, or pass --data_dir with a folder holding '
             f'{TRAIN_FILE}.')
  with gzip.open(path, 'rb') as f:
    data = f.read()
  magic, count, rows, cols = (int(v) for v in np.frombuffer(data, '>u4', count=4))
  if magic != IMAGES_MAGIC or (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE) or (
      len(data) != 16 + count * rows * cols):
    sys.exit(f'Error: {path} is not an IDX file of 28x28 uint8 images (magic {magic}, '
             f'{count} x {rows} x {cols}, {len(data)} bytes).')
  return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def snapshot_path(output: str, minutes: float) -> str:
  """Where the samples at `minutes` go: beside `output`, e.g. samples.npy -> samples_5min.npy."""
  return f'{os.path.splitext(output)[0]}_{minutes:g}min.npy'


def write_samples(net_g: nn.Module, latents: torch.Tensor, path: str, sample_batch_size: int,
                  device: torch.device) -> None:
  """Writes net_g's images of `latents` to `path` as float32 NHWC in [0, 1].

  Eval mode: BN's running statistics, as the tutorial's generate_and_save_images; the caller
  puts net_g back in train mode to train on.
  """
  net_g.eval()
  with torch.no_grad():
    samples = np.concatenate([
        net_g(latents[i:i + sample_batch_size].to(device)).cpu().numpy()
        for i in range(0, len(latents), sample_batch_size)])
  samples = np.clip((samples.transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:  # np.save(path) would append '.npy' to other names.
    np.save(f, samples)


class EpochBatches:
  """Batches of `images` (uint8 [N, ...] on the device) as an epoch loop draws them: shuffled
  anew each epoch by the seeded numpy generator `rng`, the last partial batch dropped."""

  def __init__(self, images: torch.Tensor, batch_size: int, rng: np.random.Generator):
    self.num_batches = len(images) // batch_size
    if self.num_batches < 1:
      sys.exit(f'Error: {len(images)} images are fewer than one batch of {batch_size}.')
    self.taken = 0
    self._images, self._batch_size, self._rng = images, batch_size, rng

  def next(self) -> torch.Tensor:
    """The next batch, uint8 as stored."""
    i = self.taken % self.num_batches
    if i == 0:  # a new epoch
      self._order = torch.from_numpy(self._rng.permutation(len(self._images))).to(
          self._images.device)
    self.taken += 1
    return self._images[self._order[i * self._batch_size:(i + 1) * self._batch_size]]

  @property
  def epochs(self) -> float:
    return self.taken / self.num_batches


def train_for_minutes(args: argparse.Namespace, device: torch.device, start: float,
                      net_g: nn.Module, latents: torch.Tensor, train_step) -> dict:
  """Calls `train_step()` until args.minutes of wall clock have passed since `start` (the
  clock reading before the data were read: reading them counts), then writes the samples of
  `latents` to args.output. At each of args.snapshot_minutes it also writes them
  (snapshot_path); the clock stops while it does, so a snapshot costs the run no training
  time. Returns {steps, minutes, train_seconds, load_seconds, snapshot_seconds, snapshots,
  last}: `last` is the last train_step()'s result, train_seconds the training loop's time.
  """
  paused = 0.0  # seconds spent writing snapshots, left out of the budget and the rates

  def trained() -> float:
    return time.perf_counter() - start - paused

  net_g.train()
  steps = 0
  last = None
  snapshots = []
  train_start = trained()
  while True:
    # Each mark's snapshot comes at the first step boundary at or after it.
    for mark in args.snapshot_minutes[len(snapshots):]:
      if trained() < 60.0 * mark:
        break
      synchronize(device)  # steps still queued on a GPU count as training
      snapshots.append({'minutes': mark, 'steps': steps, 'train_minutes': trained() / 60.0,
                        'output': snapshot_path(args.output, mark)})
      pause_start = time.perf_counter()
      write_samples(net_g, latents, snapshots[-1]['output'], args.sample_batch_size, device)
      net_g.train()
      paused += time.perf_counter() - pause_start
    if trained() >= 60.0 * args.minutes:
      break
    last = train_step()
    steps += 1
  synchronize(device)
  end = trained()

  write_samples(net_g, latents, args.output, args.sample_batch_size, device)
  return {'steps': steps, 'minutes': end / 60.0,  # of training: snapshot writing left out
          'train_seconds': max(end - train_start, 1e-9), 'load_seconds': train_start,
          'snapshot_seconds': paused, 'snapshots': snapshots, 'last': last}


def train(args: argparse.Namespace, device: torch.device) -> dict:
  """Trains for args.minutes (data loading included), writes the samples, returns a dict."""
  start = time.perf_counter()
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  # One set of latents, from their own seeded stream, for the snapshots and the final samples.
  latents = torch.randn(args.num_samples, NZ, generator=torch.Generator().manual_seed(args.seed))

  images = load_images(args.data_dir)
  # uint8 on the device; each batch is scaled to [-1, 1] as the tutorial does.
  batches = EpochBatches(torch.from_numpy(images.copy()).to(device).unsqueeze(1),
                         args.batch_size, rng)

  net_g = Generator().to(device)
  net_g.apply(keras_init)
  net_d = Discriminator().to(device)
  net_d.apply(keras_init)
  params_g = list(net_g.parameters())
  params_d = list(net_d.parameters())
  optimizer_g = torch.optim.Adam(params_g, lr=LR, betas=BETAS, eps=ADAM_EPS)
  optimizer_d = torch.optim.Adam(params_d, lr=LR, betas=BETAS, eps=ADAM_EPS)
  ones = torch.ones(args.batch_size, device=device)
  zeros = torch.zeros(args.batch_size, device=device)

  def train_step() -> tuple[torch.Tensor, torch.Tensor]:
    """The tutorial's train_step: both losses from one pass, then both updates."""
    real = (batches.next().float() - 127.5) / 127.5
    noise = torch.randn(args.batch_size, NZ, device=device)
    fake = net_g(noise)
    real_output = net_d(real)
    fake_output = net_d(fake)
    loss_g = F.binary_cross_entropy_with_logits(fake_output, ones)
    loss_d = (F.binary_cross_entropy_with_logits(real_output, ones)
              + F.binary_cross_entropy_with_logits(fake_output, zeros))
    optimizer_g.zero_grad(set_to_none=True)
    optimizer_d.zero_grad(set_to_none=True)
    # Each loss's gradient for its own network only, like the tutorial's two tapes.
    loss_g.backward(inputs=params_g, retain_graph=True)
    loss_d.backward(inputs=params_d)
    optimizer_g.step()
    optimizer_d.step()
    return loss_d.detach(), loss_g.detach()

  net_d.train()
  run = train_for_minutes(args, device, start, net_g, latents, train_step)
  loss_d, loss_g = run['last'] or (torch.zeros(()), torch.zeros(()))
  return {
      'framework': 'pytorch',
      'model': 'dcgan28',
      'minutes': run['minutes'],  # of training: snapshot writing left out
      'steps': run['steps'],
      'epochs': batches.epochs,
      'batch_size': args.batch_size,
      # Real images the discriminator sees per second of the training loop.
      'images_per_second': run['steps'] * args.batch_size / run['train_seconds'],
      'load_seconds': run['load_seconds'],
      'snapshot_seconds': run['snapshot_seconds'],
      'snapshots': run['snapshots'],
      'd_loss': float(loss_d),
      'g_loss': float(loss_g),
      'num_samples': args.num_samples,
      'seed': args.seed,
      'device': device.type,
      'threads': torch.get_num_threads(),
      'output': args.output,
  }


def positive_float(text: str) -> float:
  value = float(text)
  if not value > 0:
    raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
  return value


def minute_marks(text: str) -> list[float]:
  """'5,10' -> [5.0, 10.0]: sorted, each > 0."""
  try:
    return sorted({positive_float(mark) for mark in text.split(',') if mark.strip()})
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'expected minutes separated by commas, e.g. 5,10; {e}')


def add_training_arguments(parser: argparse.ArgumentParser, output: str) -> None:
  """The flags of a training run for a time budget (train_for_minutes), --output defaulting
  to `output`."""
  parser.add_argument('--minutes', type=positive_float, default=15.0,
                      help='Wall-clock training budget, reading the data included.')
  parser.add_argument('--output', default=output,
                      help='The .npy file of float32 NHWC samples in [0, 1].')
  parser.add_argument('--snapshot_minutes', type=minute_marks, default=[],
                      help='Also write samples at these minutes of the budget, e.g. 5,10, to '
                      'OUTPUT_5min.npy, ... beside --output; writing them takes no training '
                      'time.')
  parser.add_argument('--num_samples', type=positive, default=10_000)
  parser.add_argument('--data_dir', default='/usr/share/datasets/fashion-mnist',
                      help=f'Folder holding {TRAIN_FILE}.')
  parser.add_argument('--batch_size', type=positive, default=64)
  parser.add_argument('--sample_batch_size', type=positive, default=500)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                      help='Default: cuda if available, else cpu.')
  parser.add_argument('--threads', type=positive, default=None,
                      help='torch.set_num_threads; default: leave torch\'s choice.')


def check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
  """Exits with a usage error if a snapshot falls at or after the end of the budget."""
  if args.snapshot_minutes and args.snapshot_minutes[-1] >= args.minutes:
    parser.error(f'--snapshot_minutes must be below --minutes={args.minutes:g}; got '
                 f'{args.snapshot_minutes[-1]:g}.')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  add_training_arguments(parser, 'runs/pytorch_dcgan28/samples.npy')
  args = parser.parse_args()
  check_training_arguments(parser, args)
  print(json.dumps(train(args, select_device(args.device, args.threads))))


if __name__ == '__main__':
  main()

"""pytorch-fid, the FID reference implementation, as the tests' oracle: run by
tests/pytorch_fid_env.py with the python of its own virtual environment (torch is no dependency of
gan_jax), never imported by the tests. Arrays come and go as .npy/.npz files.

  python pytorch_fid_reference.py random-weights OUT.pth --seed 0 [--legacy]
      [--no-num-batches-tracked]
  python pytorch_fid_reference.py features WEIGHTS.pth IMAGES.npy OUT.npz
  python pytorch_fid_reference.py frechet-distance FEATURES1.npy FEATURES2.npy OUT.npy
  python pytorch_fid_reference.py state-dict WEIGHTS.pth OUT.npz
"""
import argparse
import sys
import types

# torchvision's wheels on PyPI are built for the CUDA torch; beside the CPU torch of the env its
# torchvision._meta_registrations fails on import ('operator torchvision::nms does not exist').
# That module only registers shapes of compiled detection operators; pytorch-fid needs none of
# them, only the pure-Python torchvision.models.inception, so an empty stand-in takes its place.
sys.modules['torchvision._meta_registrations'] = types.ModuleType(
    'torchvision._meta_registrations')

import numpy as np  # noqa: E402  (after the stub: torchvision must not load the real module)
import torch  # noqa: E402
from pytorch_fid import fid_score, inception  # noqa: E402

# The images of the BN calibration: enough for stable statistics of every channel, few enough
# that the train-mode pass takes seconds on a CPU.
CALIBRATION_IMAGES = 8
# Sides of the noise the calibration images are upsampled from: white noise at 299 alone would
# calibrate the net for inputs rougher than the small, smooth upsampled images tests feed it.
CALIBRATION_SIDES = (299, 299, 149, 75, 32, 32, 16, 8)
# pytorch-fid's batch size (fid_score's --batch-size default).
BATCH_SIZE = 50


def fid_inception_v3_without_download():
  """`inception.fid_inception_v3()`, pytorch-fid's own construction, whose weights download is
  replaced by the freshly initialised model's own state dict (loading it changes nothing)."""
  built = []
  make_inception = inception._inception_v3

  def make_and_remember(*args, **kwargs):
    built.append(make_inception(*args, **kwargs))
    return built[-1]

  load_url = inception.load_state_dict_from_url
  inception._inception_v3 = make_and_remember
  inception.load_state_dict_from_url = lambda url, **kwargs: built[-1].state_dict()
  try:
    return inception.fid_inception_v3()
  finally:
    inception._inception_v3 = make_inception
    inception.load_state_dict_from_url = load_url


def random_weights(out, seed, legacy, num_batches_tracked):
  """Writes a seeded random state dict of the FID Inception-v3 whose activations keep their scale
  through its 94 convolutions: random BN scales and shifts, BN statistics measured on images."""
  torch.manual_seed(seed)  # the convolutions' and fc's initialisation
  generator = torch.Generator().manual_seed(seed)
  net = fid_inception_v3_without_download()
  batch_norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for bn in batch_norms:
      bn.weight.uniform_(0.5, 1.5, generator=generator)
      bn.bias.normal_(0.0, 0.1, generator=generator)
      bn.reset_running_stats()
      bn.momentum = None  # running statistics become plain averages over the batches seen
    images = torch.cat([
        torch.nn.functional.interpolate(
            torch.rand(1, 3, side, side, generator=generator), size=(299, 299),
            mode='bilinear', align_corners=False)
        for side in CALIBRATION_SIDES[:CALIBRATION_IMAGES]])
    net.train()
    net(2 * images - 1)  # as InceptionV3(normalize_input=True) feeds the net
    net.eval()
  state_dict = {name: tensor.clone() for name, tensor in net.state_dict().items()
                if num_batches_tracked or not name.endswith('.num_batches_tracked')}
  torch.save(state_dict, out, _use_new_zipfile_serialization=not legacy)


def load_state_dict(path):
  return torch.load(path, map_location='cpu', weights_only=True)


def features(weights, images, out):
  """Writes pytorch-fid's pool3 features ('pool') and the bias-free logits ('logits_unbiased':
  pool @ fc.weight.T, torch-fidelity's name, what the original Inception Score code takes the
  softmax of) of NHWC [0, 1] float32 images, computed as pytorch-fid's get_activations does."""
  state_dict = load_state_dict(weights)
  load_url = inception.load_state_dict_from_url
  inception.load_state_dict_from_url = lambda url, **kwargs: state_dict
  try:
    model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                  resize_input=True, normalize_input=True,
                                  use_fid_inception=True)
  finally:
    inception.load_state_dict_from_url = load_url
  model.eval()
  images = torch.from_numpy(np.load(images)).permute(0, 3, 1, 2).contiguous()
  with torch.no_grad():
    pool = torch.cat([model(images[start:start + BATCH_SIZE])[0][:, :, 0, 0]
                      for start in range(0, len(images), BATCH_SIZE)])
    logits_unbiased = pool @ state_dict['fc.weight'].T
  np.savez(out, pool=pool.numpy(), logits_unbiased=logits_unbiased.numpy())


def frechet_distance(features1, features2, out):
  """Writes pytorch-fid's FID of two feature sets, with its statistics (as in
  fid_score.calculate_activation_statistics) and its formula."""
  statistics = []
  for path in (features1, features2):
    activations = np.load(path)
    statistics += [np.mean(activations, axis=0), np.cov(activations, rowvar=False)]
  np.save(out, np.float64(fid_score.calculate_frechet_distance(*statistics)))


def state_dict(weights, out):
  """Writes torch's own reading of a state dict file as numpy arrays (int64 stays int64)."""
  np.savez(out, **{name: tensor.numpy() for name, tensor in load_state_dict(weights).items()})


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest='command', required=True)
  command = commands.add_parser('random-weights')
  command.add_argument('out')
  command.add_argument('--seed', type=int, required=True)
  command.add_argument('--legacy', action='store_true', help='the pre-1.6 (non-zip) format')
  command.add_argument('--no-num-batches-tracked', dest='num_batches_tracked',
                       action='store_false')
  command = commands.add_parser('features')
  command.add_argument('weights')
  command.add_argument('images')
  command.add_argument('out')
  command = commands.add_parser('frechet-distance')
  command.add_argument('features1')
  command.add_argument('features2')
  command.add_argument('out')
  command = commands.add_parser('state-dict')
  command.add_argument('weights')
  command.add_argument('out')
  args = vars(parser.parse_args())
  run = {'random-weights': random_weights, 'features': features,
         'frechet-distance': frechet_distance, 'state-dict': state_dict}[args.pop('command')]
  run(**args)


if __name__ == '__main__':
  main()

r"""The papers' settings, one run each: every family's paper preset (README "The papers'
settings"), with the scores its paper published, which launch.summary shows beside ours.

Each run is an experiment's paper preset as it is (its header cites the sources, says what
differs from the paper and estimates the H100 hours: about 25 for the seven). Our scores
come from `python -m gan_jax.evaluate --workdir WORKDIR` on each finished run, whose
eval.jsonl the summary reads. `:cpu` runs each preset for 2 steps at batch 8: a check, on
this machine, that every preset builds, compiles and trains before paying for GPUs (CIFAR-10
and CelebA download themselves; CelebA-HQ must be downloaded by hand first).

python -m launch.sweep --sweep launch/sweeps/papers.py --target sky --accelerator H100:1 \
    --bucket gs://my-bucket
python -m launch.summary runs/sweeps/papers
python -m launch.sweep --sweep launch/sweeps/papers.py:cpu --target local
"""
from launch import hyper

# Each preset and its paper's published scores (no Inception score or FID for DCGAN's faces).
PAPERS = {
    'experiments/wgan_gp.py:cifar10': {'inception_score': 7.86},  # Gulrajani et al., Table 3
    'experiments/resnet_sngan.py:cifar10': {'inception_score': 8.22, 'fid': 21.7},  # Table 2
    'experiments/cond_sngan.py:cifar10': {'inception_score': 8.62, 'fid': 17.5},
    'experiments/biggan.py:cifar10': {'inception_score': 9.22, 'fid': 14.73},
    'experiments/stylegan2.py:cifar10': {'inception_score': 9.74, 'fid': 3.26},  # unconditional
    'experiments/dcgan64.py:celeb_a': {},
    'experiments/progan.py:celeb_a_hq': {'fid': 7.30},
}
CPU = {'num_steps': 2, 'batch_size': 8, 'log_every': 1, 'sample_every': 2,
       'checkpoint_every': 2, 'num_grid_samples': 4}


def get_sweep(arg=None):
  if arg not in (None, 'cpu'):
    raise hyper.unknown_arg(arg, ['cpu'])
  points = [CPU] if arg == 'cpu' else [{}]
  return [hyper.Experiment(config, points, published) for config, published in PAPERS.items()]

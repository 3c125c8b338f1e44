"""Shared config defaults and presets.

Every experiment in experiments/ starts from `default()`, states what differs and
ends with `apply_preset`. `validation.validate` checks a config against `default()`
before anything compiles.
"""
from typing import Any, Mapping

import ml_collections

from gan_jax import growth
from gan_jax.errors import UserError


def default() -> ml_collections.ConfigDict:
  """The fields every experiment has; experiments override a few.

  A new field's default must keep the behaviour from before it existed: workdirs
  written earlier get it when they are read (`checkpoints.read_config`).
  """
  config = ml_collections.ConfigDict()
  config.seed = 0
  # fashion_mnist, mnist (28x28x1 images from their IDX files), image_folder (your images:
  # data.path), any tfds image data set by name (cifar10, celeb_a, lsun/bedroom, ...), or the
  # toys ring8, grid25 (2-D points).
  config.dataset = 'fashion_mnist'
  config.data = ml_collections.ConfigDict(dict(
      path='',  # image_folder: a folder or .zip of PNG, JPEG and WebP images, found recursively
      folder_labels=False,  # image_folder: the first-level subfolders' names are the classes
      # Where a data set needing a manual download has its files (the four IDX .gz files of
      # MNIST; ImageNet's archives, ...); '' searches the usual places.
      manual_dir='',
      data_dir='',  # where tfds keeps the prepared array_record files; '' is ~/tensorflow_datasets
      num_threads=2,  # grain reader threads per host
      prefetch=8,  # batches grain prepares ahead
      # grain worker processes that read and decode images (0: reader threads only); data
      # sets held in memory need none.
      workers=0,
      # A data set whose training images, fitted, take at most this many MB is fitted once
      # and held in memory (faster); a larger one streams from disk.
      cache_in_memory_mb=2048,
      # > 0: images are cropped to a square (crop='center': the largest centred one; 'none':
      # stretched) and resized to this side (Lanczos when shrinking, bilinear as
      # torchvision's Resize when growing). 0 keeps the data set's side.
      image_size=0,
      crop='center',
      channels=0,  # 1 (grey) or 3 (RGB) converts images; 0 keeps the data set's
      random_flip=False,  # mirror half the images left-right (StyleGAN2's --mirror, BigGAN's)
      num_examples=0,  # > 0 trains on only the first so many images (small-data studies)
      # Filled in from the data set when a run starts (-1, (): not yet), and saved in the
      # workdir's config.json, so that sampling needs no data: one example's shape (after
      # image_size and channels), the number of classes and their names.
      shape=(),
      num_classes=-1,
      class_names=(),
  ))
  config.model = ml_collections.ConfigDict(dict(
      name='dcgan',  # one of models.MODELS
      conditional=False,  # class-conditional G and D (models.CONDITIONAL_MODELS)
      latent_dim=100,
      latent_prior='gaussian',  # 'gaussian' N(0, I) or 'uniform' U[-1, 1]
      width=64,  # DCGAN: channels of the widest-resolution layer; MLP: hidden units
      # resnet and biggan (models/resnet.py): `width` is G's channels after its last block,
      # d_width D's after its first (0: the same as width); width_growth 2 doubles both at
      # each halving of the resolution, 1 keeps them constant; the last
      # d_blocks_without_downsampling D blocks keep the resolution (SNGAN's CIFAR D: 2);
      # attention_resolution adds self-attention at feature maps of that side (0: none).
      d_width=0,
      width_growth=1,
      d_blocks_without_downsampling=2,
      attention_resolution=0,
      mlp_layers=3,  # MLP hidden layers in each network
      g_batch_norm=True,  # batch norm in the generator
      sync_batch_norm=False,  # batch statistics over all devices instead of per device
      spectral_norm=False,  # spectral normalization of every discriminator layer (biggan: always)
      d_batch_norm=False,  # batch norm in the discriminator (DCGAN's; not with gradient_penalty)
      # How the DCGAN, ResNet and BigGAN convolutions run (layers.py): 'auto' (on CPU
      # DCGAN's as matmuls, the ResNets' 3x3 ones as XLA's with the kernel gradient over
      # chunks of the batch; XLA's elsewhere), 'matmul' (over image patches) or 'xla'.
      # The same function and parameters either way.
      conv_implementation='auto',
      compute_dtype='float32',  # or 'bfloat16': mixed precision, float32 parameters
      mbstd_group_size=4,  # progan, stylegan2: examples per minibatch-stddev group in D
      # stylegan2: layers of the mapping network z -> w, and the share of training batches
      # that mix two latents' styles.
      mapping_layers=8,
      style_mixing=0.9,
  ))
  # progan (growth.py): real images shown to D while a stage fades its new blocks in, and
  # then while it trains stably (the first stage only trains stably); batch_sizes, one global
  # batch per stage from 4x4 up (the reference's minibatch_dict; () trains every stage with
  # batch_size).
  config.growth = ml_collections.ConfigDict(dict(fade_images=600_000, stable_images=600_000,
                                                 batch_sizes=()))
  config.loss = 'non_saturating'  # one of losses.LOSSES
  config.gradient_penalty = 0.0  # lambda of the WGAN-GP penalty; 0 turns it off
  # Penalties on D's gradient at real data (0 turns each off): R1's gamma (Mescheder et al.,
  # 2018), computed every r1_every steps only and weighted as many times (StyleGAN2's lazy
  # regularisation), and DRAGAN's lambda (Kodali et al., 2017).
  config.r1_gamma = 0.0
  config.r1_every = 1
  config.dragan_penalty = 0.0
  # epsilon of ProGAN's drift penalty epsilon * E[D(x)^2] on real logits (0.001), which keeps
  # a Wasserstein critic's outputs near 0.
  config.drift_penalty = 0.0
  # StyleGAN2's path-length regularisation of G: its weight (2.0), computed every pl_every
  # generator steps only and weighted as many times.
  config.pl_weight = 0.0
  config.pl_every = 4
  # DiffAugment (Zhao et al., 2020) of everything D sees: '' or a comma-separated policy of
  # augment.POLICIES, e.g. 'color,translation,cutout'.
  config.diffaugment = ''
  # beta of BigGAN's orthogonal regularisation of G's weights (Brock et al., 2019; 1e-4).
  config.orthogonal_reg = 0.0
  config.n_critic = 1  # discriminator updates per generator update
  config.batch_size = 64  # global: split over every device of every host
  config.num_steps = 10_000  # generator updates
  config.g_optimizer = ml_collections.ConfigDict(dict(learning_rate=2e-4, b1=0.5, b2=0.999))
  config.d_optimizer = ml_collections.ConfigDict(dict(learning_rate=2e-4, b1=0.5, b2=0.999))
  # Both learning rates held ('constant') or decayed to 0 at num_steps ('linear', 'cosine').
  config.lr_schedule = 'constant'
  # An exponential moving average of the generator's weights (0: none), from step
  # g_ema_start on; samples, evaluation and notebooks use it (Karras et al., 2018; BigGAN).
  config.g_ema_decay = 0.0
  config.g_ema_start = 0
  # Or the EMA's half-life in thousands of images (> 0, instead of g_ema_decay), StyleGAN2's
  # ema_kimg: decay 0.5 ** (batch_size / (g_ema_kimg * 1000)) per step; g_ema_rampup > 0
  # caps the half-life at that many times the images shown so far (its ema_rampup, 0.05).
  config.g_ema_kimg = 0.0
  config.g_ema_rampup = 0.0
  # A wall-clock budget (0: none): the run stops, saved, after this many minutes of
  # training in all (resumes included) or at num_steps, whichever comes first.
  config.train_minutes = 0.0
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 1000
  config.checkpoint_every_minutes = 0.0  # also every so many minutes of training (0: never)
  config.keep_checkpoints = 3
  config.num_grid_samples = 64  # the fixed latents of the sample grids
  # Every eval_every steps (0: never), score eval_num_samples samples as gan_jax.evaluate
  # does (FID, KID, precision/recall, ...; toy data: modes covered), logged with the metrics
  # and in eval.jsonl. keep_best_checkpoint keeps the best-scoring one (lowest FID; toy data:
  # most modes covered) in WORKDIR/best_checkpoint/. In Inception's space (colour data) the
  # reference is the first eval_reference_count training images (0: all), embedded once and
  # cached: the papers' 50,000 take 1 h 45 min on 2 CPU cores, 5,000 ten minutes.
  config.eval_every = 0
  config.eval_num_samples = 2000
  config.eval_reference_count = 50_000
  config.keep_best_checkpoint = False
  # On NaN/Inf: 'stop', or 'rollback' to the last good checkpoint with both learning rates
  # multiplied by rollback_lr_factor, at most max_rollbacks times.
  config.on_divergence = 'stop'
  config.rollback_lr_factor = 0.5
  config.max_rollbacks = 3
  # Resuming a workdir under a config that changes the state's shapes is refused; True
  # starts it over instead, keeping the old checkpoints aside.
  config.allow_config_change = False
  return config


def toy(dataset: str) -> ml_collections.ConfigDict:
  """MLPs on a 2-D Gaussian mixture (input_pipeline's 'ring8' or 'grid25')."""
  config = default()
  config.dataset = dataset
  config.model.name = 'mlp'
  config.model.width = 128
  config.model.mlp_layers = 2
  config.model.latent_dim = 2
  config.loss = 'non_saturating'
  config.batch_size = 512
  config.num_steps = 4000
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.num_grid_samples = 1024  # points of the scatter plots
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1 = 1e-3, 0.5
  return config


def resnet() -> ml_collections.ConfigDict:
  """SNGAN's CIFAR-10 setting (Miyato et al., 2018, Table 4; Mimicry's sngan_32) on
  Fashion-MNIST at 32x32: ResNet G (256 channels) and D (128, spectral norm), hinge loss,
  5 D steps per G step, Adam(2e-4, 0, 0.9). The ResNet experiments start from it."""
  config = default()
  config.dataset = 'fashion_mnist'
  config.data.image_size = 32
  config.model.name = 'resnet'
  config.model.width = 256
  config.model.d_width = 128
  config.model.spectral_norm = True
  config.model.latent_dim = 128
  config.loss = 'hinge'
  config.n_critic = 5
  config.batch_size = 64
  config.num_steps = 50_000
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1, optimizer.b2 = 2e-4, 0.0, 0.9
  config.g_ema_decay = 0.9999
  config.g_ema_start = 1000
  config.sample_every = 2500
  config.checkpoint_every = 2500
  return config


# The `:cpu` preset the ResNet experiments share: 30 minutes on 2 CPU cores with narrow
# networks and one D step per G step at a higher learning rate, with an EMA of G.
RESNET_CPU = {'model.width': 32, 'model.d_width': 32, 'batch_size': 32, 'n_critic': 1,
              'train_minutes': 30.0, 'num_steps': 100_000,
              'g_optimizer.learning_rate': 1e-3, 'd_optimizer.learning_rate': 1e-3,
              'g_ema_decay': 0.995, 'g_ema_start': 1000,
              'log_every': 500, 'sample_every': 2000, 'checkpoint_every': 2000}

# The `:cifar10` preset of resnet_sngan.py and cond_sngan.py: SNGAN's CIFAR-10 run (Miyato et
# al., 2018, Table 2; Miyato & Koyama, 2018) as the authors' configs/sn_cifar10_*.yml
# (pfnet-research/sngan_projection) set it: batch 64, 50,000 generator updates with the
# learning rates decayed linearly to 0, and no EMA of G.
SNGAN_CIFAR10 = {'dataset': 'cifar10', 'data.image_size': 32,
                 'model.width': 256, 'model.d_width': 128, 'model.width_growth': 1,
                 'model.d_blocks_without_downsampling': 2, 'model.spectral_norm': True,
                 'model.latent_dim': 128, 'loss': 'hinge', 'n_critic': 5, 'batch_size': 64,
                 'num_steps': 50_000, 'lr_schedule': 'linear',
                 'g_optimizer.learning_rate': 2e-4, 'g_optimizer.b1': 0.0, 'g_optimizer.b2': 0.9,
                 'd_optimizer.learning_rate': 2e-4, 'd_optimizer.b1': 0.0, 'd_optimizer.b2': 0.9,
                 'g_ema_decay': 0.0}


def _smoke_preset(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A tiny, 2-step version of any experiment, for tests; a growing model grows once."""
  preset = {'num_steps': 2, 'batch_size': 8, 'model.width': 8, 'model.d_width': 0,
            'model.latent_dim': 8,
            'log_every': 1, 'sample_every': 2, 'checkpoint_every': 2, 'num_grid_samples': 4}
  if config.data.image_size > 16:  # the ResNets and ProGAN: one block less, a faster compile
    preset['data.image_size'] = 16
  if growth.is_growing(config):  # one step at 4x4, then 8x8 fading in
    preset.update({'growth.stable_images': 8 * config.n_critic, 'growth.fade_images': 8})
  return preset


def apply_preset(config: ml_collections.ConfigDict, arg: str | None,
                 **presets: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """Applies the preset named by the config file's argument (`experiments/x.py:cpu`).

  Args:
    config: the experiment's config.
    arg: None for the full run, 'smoke' for a 2-step test run, or a name in `presets`.
    **presets: the experiment's own presets, each a dict of dotted field -> value.
  Returns:
    The config with the preset's fields set.
  """
  if arg is None:
    return config
  presets = {'smoke': _smoke_preset(config), **presets}
  if arg not in presets:
    raise UserError(f'Unknown config argument {arg!r}; valid ones: {", ".join(sorted(presets))} '
                    '(or none for the full run).')
  for dotted, value in presets[arg].items():
    *parents, field = dotted.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[field] = value
  return config

r"""Progressive GAN (Karras et al., 2018) on Fashion-MNIST resized to 32x32.

Both networks grow from 4x4 to 32x32 in four stages: each new block fades in over
600,000 real images shown to D, then trains stably for as many (the paper: 800,000).
Equalized learning rate, pixel norm in G, minibatch stddev in D, WGAN-GP (lambda 10) with
the drift term (epsilon 0.001), one D step per G step, Adam(1e-3, 0, 0.99) and an EMA of G
(0.999). Channels: 256 at every side (the paper's 512 for 1024x1024 faces); the grids show
each stage's images upscaled to 32x32. `:cpu` grows faster with narrower networks, for
45 minutes on 2 CPU cores.

`:celeb_a_hq` is the paper's CelebA-HQ run at 1024x1024 (its Appendix A.1, and the
"preset-v1-1gpu" of tkarras/progressive_growing_of_gans's config.py, which its README calls
the config that produced the paper's CelebA-HQ results): z of 512, 512 channels up to 32x32
then halved at every doubling (16 at 1024x1024), 800,000 images to fade each block in and
800,000 to train it stably, 19,000,000 images in all (total_kimg 19000), batch 16 dropping
to 14, 6 and 3 at 256, 512 and 1024 (minibatch_dict: growth.batch_sizes), Adam (0.001, 0,
0.99) reset at each fade's start and end, WGAN-GP (lambda 10) with the drift term 0.001 at
the data's side, one D step per G step, an
EMA of G of 0.999, minibatch-stddev groups of 16 and mirrored images (mirror_augment). The
data must be downloaded by hand (tfds celeb_a_hq: the first run says what to put where,
--config.data.manual_dir). Published: FID 7.30 on CelebA-HQ 1024x1024 (as Papers with Code
lists the paper's result; we could not read the table it comes from). Estimated cost:
the sum over sides s of the images trained at s / 16 x FLOPs per step of a model whose last
stage is s (`python -m gan_jax.benchmark --config experiments/progan.py:celeb_a_hq
--config.data.image_size=s --config.model.conv_implementation=xla --flops_only`, jax 0.10.2:
0.15, 0.76, 3.3, 7.1, 11, 15, 19 and 23 TFLOP per step at 8 to 1024, the 8x8 model's
standing in for 4x4; 800,000 images at 4x4, 1,600,000 at each side from 8 to 512, 7,000,000
at 1024) at 30% of an H100's 989 TFLOP/s (dense bf16): about 15 H100 hours, 9.4 of them at
1024x1024.

python -m gan_jax.main --config experiments/progan.py --workdir runs/progan
python -m gan_jax.main --config experiments/progan.py:cpu --workdir runs/progan_cpu
python -m gan_jax.main --config experiments/progan.py:celeb_a_hq --workdir runs/progan_celeb_a_hq
"""
from gan_jax import configs

# Karras et al. (2018), Appendix A.1; tkarras/progressive_growing_of_gans, config.py's
# preset-v1-1gpu with train.py's and loss.py's defaults.
CELEB_A_HQ = {
    'dataset': 'celeb_a_hq/1024', 'data.image_size': 0, 'data.random_flip': True,
    'model.width': 512, 'model.latent_dim': 512, 'model.mbstd_group_size': 16,
    'loss': 'wasserstein', 'gradient_penalty': 10.0, 'drift_penalty': 1e-3, 'n_critic': 1,
    'growth.fade_images': 800_000, 'growth.stable_images': 800_000,
    'batch_size': 16, 'growth.batch_sizes': (16,) * 6 + (14, 6, 3),
    'num_steps': 3_264_285,  # 19,000,000 images at those batches (growth.images_before)
    'g_optimizer.learning_rate': 1e-3, 'g_optimizer.b1': 0.0, 'g_optimizer.b2': 0.99,
    'd_optimizer.learning_rate': 1e-3, 'd_optimizer.b1': 0.0, 'd_optimizer.b2': 0.99,
    'g_ema_decay': 0.999, 'g_ema_start': 0,
    'sample_every': 10_000, 'checkpoint_every': 10_000,
}


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.data.image_size = 32
  config.model.name = 'progan'
  config.model.width = config.model.latent_dim = 256
  config.loss = 'wasserstein'
  config.gradient_penalty = 10.0
  config.drift_penalty = 1e-3
  config.batch_size = 64
  config.growth.fade_images = config.growth.stable_images = 600_000
  config.num_steps = 100_000  # 4.2M images to grow to 32x32, then 2.2M at it
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1, optimizer.b2 = 1e-3, 0.0, 0.99
  config.g_ema_decay = 0.999
  config.sample_every = 2500
  config.checkpoint_every = 2500
  # On CPU a 32x32 step costs 25x a 4x4 one (WGAN-GP's double backward pass): 32 channels,
  # batch 16, 32,000 images per phase reach 32x32 in ~8 minutes and fade it in by ~18.
  cpu = {'model.width': 32, 'model.latent_dim': 64, 'batch_size': 16,
         'growth.fade_images': 32_000, 'growth.stable_images': 32_000,
         'train_minutes': 45.0, 'num_steps': 100_000,
         'log_every': 500, 'sample_every': 1000, 'checkpoint_every': 2000}
  return configs.apply_preset(config, arg, cpu=cpu, celeb_a_hq=CELEB_A_HQ)

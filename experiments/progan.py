r"""Progressive GAN (Karras et al., 2018) on Fashion-MNIST resized to 32x32.

Both networks grow from 4x4 to 32x32 in four stages: each new block fades in over
600,000 real images shown to D, then trains stably for as many (the paper: 800,000).
Equalized learning rate, pixel norm in G, minibatch stddev in D, WGAN-GP (lambda 10) with
the drift term (epsilon 0.001), one D step per G step, Adam(1e-3, 0, 0.99) and an EMA of G
(0.999). Channels: 256 at every side (the paper's 512 for 1024x1024 faces); the grids show
each stage's images upscaled to 32x32. `:cpu` grows faster with narrower networks, for
45 minutes on 2 CPU cores.

python -m gan_jax.main --config experiments/progan.py --workdir runs/progan
python -m gan_jax.main --config experiments/progan.py:cpu --workdir runs/progan_cpu
"""
from gan_jax import configs


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
  return configs.apply_preset(config, arg, cpu=cpu)

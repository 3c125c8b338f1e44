r"""SN-GAN (Miyato et al., 2018): spectral norm in every discriminator layer, hinge loss.

DCGAN-style networks on Fashion-MNIST, Adam(2e-4, 0.5, 0.999) and one D update
per G update: setting (C) of the paper. `:cpu` is the default experiment of the README.

python -m gan_jax.main --config experiments/sngan.py --workdir runs/sngan
python -m gan_jax.main --config experiments/sngan.py:cpu --workdir runs/sngan_cpu  # 15 min, CPU
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.model.spectral_norm = True
  config.loss = 'hinge'
  # :cpu is tuned for 15 minutes on 2 CPU cores (README "What mattered"): width 32 and batch
  # 32 (~33 steps/s), learning rates 20x the paper's with an EMA of G, the whole budget used.
  return configs.apply_preset(config, arg, cpu={
      'model.width': 32, 'batch_size': 32, 'train_minutes': 15.0, 'num_steps': 100_000,
      'g_optimizer.learning_rate': 4e-3, 'd_optimizer.learning_rate': 4e-3,
      'g_ema_decay': 0.995, 'g_ema_start': 1000,
      'log_every': 500, 'sample_every': 2000, 'checkpoint_every': 2000})

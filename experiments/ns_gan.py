r"""DCGAN with the non-saturating loss on Fashion-MNIST: the default experiment.

Radford et al. (2016) architecture; G maximises log D(G(z)) (Goodfellow et al., 2014).

python -m gan_jax.main --config experiments/ns_gan.py --workdir runs/ns_gan
python -m gan_jax.main --config experiments/ns_gan.py:cpu --workdir runs/ns_gan_cpu  # 15 min, CPU
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.loss = 'non_saturating'
  # :cpu is tuned for 15 minutes on 2 CPU cores (README "What mattered"): width 32 and batch
  # 32 (~40 steps/s), learning rates 10x DCGAN's with an EMA of G, and the whole budget used.
  return configs.apply_preset(config, arg, cpu={
      'model.width': 32, 'batch_size': 32, 'train_minutes': 15.0, 'num_steps': 100_000,
      'g_optimizer.learning_rate': 2e-3, 'd_optimizer.learning_rate': 2e-3,
      'g_ema_decay': 0.995, 'g_ema_start': 1000,
      'log_every': 500, 'sample_every': 2000, 'checkpoint_every': 2000})

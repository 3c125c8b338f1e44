r"""MLP GAN on a ring of 8 Gaussians: the standard mode-collapse benchmark.

(Metz et al., 2017, "Unrolled GANs"): 8 modes of std 0.02 on a circle of radius 2.

python -m gan_jax.main --config experiments/toy_ring.py --workdir runs/toy_ring
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'ring8'
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
  config.num_grid_samples = 1024
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1 = 1e-3, 0.5
  return configs.apply_preset(config, arg)

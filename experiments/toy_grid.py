r"""MLP GAN on a 5x5 grid of 25 Gaussians: the harder mode-collapse benchmark.

(Dumoulin et al., 2017; VEEGAN, PacGAN): 25 modes of std 0.05 at {-4, -2, 0, 2, 4}^2.

python -m gan_jax.main --config experiments/toy_grid.py --workdir runs/toy_grid
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'grid25'
  config.model.name = 'mlp'
  config.model.width = 256
  config.model.mlp_layers = 3
  config.model.latent_dim = 16
  config.loss = 'non_saturating'
  config.batch_size = 256
  config.num_steps = 5000
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.num_grid_samples = 1024
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1 = 1e-3, 0.5
  return configs.apply_preset(config, arg)

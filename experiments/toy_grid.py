r"""MLP GAN on a 5x5 grid of 25 Gaussians: the harder mode-collapse benchmark.

(Dumoulin et al., 2017; VEEGAN, PacGAN): 25 modes of std 0.05 at {-4, -2, 0, 2, 4}^2.

python -m gan_jax.main --config experiments/toy_grid.py --workdir runs/toy_grid
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.toy('grid25')
  config.model.width = 256
  config.model.mlp_layers = 3
  config.num_steps = 6000
  return configs.apply_preset(config, arg)

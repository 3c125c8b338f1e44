r"""StyleGAN2 (Karras et al., 2020) on Fashion-MNIST resized to 32x32 (or 64x64:
--config.data.image_size=64).

Mapping network (8 layers) to W, modulated convolutions with noise inputs in a skip
generator, a residual discriminator with the minibatch stddev, equalized learning rates,
the non-saturating logistic loss with lazy R1 (gamma 0.1, every 16 steps) and lazy
path-length regularisation (weight 2, every 4 steps), style mixing (90% of batches),
Adam(2.5e-3, 0, 0.99) and an EMA of G. 256 channels (the paper's 512 for 1024x1024 faces;
its CIFAR-10 runs use 512). Sample with the truncation trick in W:
`gan_jax.sample --truncation_psi 0.7`. `:cpu`: narrower, for 45 minutes on 2 CPU cores.

python -m gan_jax.main --config experiments/stylegan2.py --workdir runs/stylegan2
python -m gan_jax.main --config experiments/stylegan2.py:cpu --workdir runs/stylegan2_cpu
python -m gan_jax.sample --workdir runs/stylegan2_cpu --truncation_psi 0.7 --num_samples 100
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.data.image_size = 32
  config.model.name = 'stylegan2'
  config.model.width = config.model.latent_dim = 256
  config.loss = 'non_saturating'
  config.r1_gamma, config.r1_every = 0.1, 16
  config.pl_weight, config.pl_every = 2.0, 4
  config.batch_size = 32
  config.num_steps = 200_000
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1, optimizer.b2 = 2.5e-3, 0.0, 0.99
  config.g_ema_decay = 0.999
  config.sample_every = 2500
  config.checkpoint_every = 2500
  # On CPU 64 channels cost 1.6 s a step, 32 channels 0.43 s.
  cpu = {'model.width': 32, 'model.latent_dim': 32, 'model.mapping_layers': 4,
         'train_minutes': 45.0, 'num_steps': 100_000, 'g_ema_decay': 0.995,
         'g_ema_start': 1000, 'log_every': 500, 'sample_every': 1000,
         'checkpoint_every': 2000}
  return configs.apply_preset(config, arg, cpu=cpu)

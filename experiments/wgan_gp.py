r"""WGAN-GP (Gulrajani et al., 2017) with the DCGAN architecture on Fashion-MNIST.

Five critic updates per generator update, penalty weight 10, Adam(1e-4, 0, 0.9) as
in the paper. The critic has no batch norm: the penalty is per example.

`:cpu` (1,000 steps) takes about 15 minutes on 2 CPU cores, ~0.9 s a step.

`:cifar10` is the paper's CIFAR-10 ResNet (its Appendix F, and gan_cifar_resnet.py of
igul222/improved_wgan_training with CONDITIONAL = False): G and D of 128 channels (G with
batch norm, D without), z of 128, batch 64, 5 critic updates, lambda 10, Adam(2e-4, 0, 0.9)
decayed linearly to 0 over 100,000 generator updates, no EMA. Published: Inception score
7.86 +- .07 (unsupervised CIFAR-10, the paper's Table 3). What differs here: their generator
update draws 128 samples (GEN_BS_MULTIPLE = 2), ours 64; they add uniform noise of 1/128 to
the real pixels (dequantisation), we do not; their critic averages its last features over
positions, ours sums them (SNGAN's; a 64x larger input to the last linear layer); weights
are initialised as SNGAN's (Xavier), theirs mostly with He's. Estimated cost: 100,000 steps
x FLOPs per step (`python -m gan_jax.benchmark --config experiments/wgan_gp.py:cifar10
--config.model.conv_implementation=xla --flops_only`: 2.01 TFLOP per step, jax 0.10.2) at
30% of an H100's 989 TFLOP/s (dense bf16): about 0.19 H100 hours.

python -m gan_jax.main --config experiments/wgan_gp.py --workdir runs/wgan_gp
python -m gan_jax.main --config experiments/wgan_gp.py:cpu --workdir runs/wgan_gp_cpu
python -m gan_jax.main --config experiments/wgan_gp.py:cifar10 --workdir runs/wgan_gp_cifar10
"""
from gan_jax import configs

# Gulrajani et al. (2017), Appendix F; igul222/improved_wgan_training, gan_cifar_resnet.py.
CIFAR10 = {
    'dataset': 'cifar10', 'data.image_size': 32,
    'model.name': 'resnet', 'model.width': 128, 'model.d_width': 128, 'model.width_growth': 1,
    'model.d_blocks_without_downsampling': 2, 'model.latent_dim': 128,
    'model.spectral_norm': False,
    'loss': 'wasserstein', 'gradient_penalty': 10.0, 'n_critic': 5,
    'batch_size': 64, 'num_steps': 100_000, 'lr_schedule': 'linear',
    'g_optimizer.learning_rate': 2e-4, 'g_optimizer.b1': 0.0, 'g_optimizer.b2': 0.9,
    'd_optimizer.learning_rate': 2e-4, 'd_optimizer.b1': 0.0, 'd_optimizer.b2': 0.9,
    'g_ema_decay': 0.0,
    'sample_every': 2500, 'checkpoint_every': 2500,
}


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.loss = 'wasserstein'
  config.gradient_penalty = 10.0
  config.n_critic = 5
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1, optimizer.b2 = 1e-4, 0.0, 0.9
  return configs.apply_preset(config, arg, cpu={
      'num_steps': 1000, 'log_every': 50, 'sample_every': 250, 'checkpoint_every': 250},
      cifar10=CIFAR10)

r"""BigGAN (Brock et al., 2019) at its CIFAR-10 scale, on Fashion-MNIST's 10 classes at 32x32.

ResNet G and D with spectral norm in both, G's batch norms conditioned on a shared class
embedding and a chunk of the hierarchical latent, a projection D, hinge loss, 4 D steps
per G step, Adam(2e-4, 0, 0.999), orthogonal regularisation (1e-4) and an EMA of G.
Self-attention is optional: --config.model.attention_resolution=16. Sample with the
truncation trick: `gan_jax.sample --truncation 0.5`. `:cpu`: 30 minutes on 2 CPU cores.

`:cifar10` is CIFAR-10 as ajbrock/BigGAN-PyTorch's scripts/launch_cifar_ema.sh runs it:
batch 50, 4 D steps per G step, Adam(2e-4, 0, 0.999) for both (the script's rates, the
defaults' betas), no orthogonal regularisation (--G_ortho 0.0), no attention, an EMA of G
(decay 0.9999, the default, from step 1,000), z of 128, arch[32] at ch 64 (256 channels),
and 500 epochs: 125,000 generator updates, as each takes 4 x 50 of the 50,000 images.
Published: Inception score 9.22, FID 14.73 on CIFAR-10 (class-conditional; the BigGAN
paper's CIFAR-10 result, as Ho et al., 2020, Table 1 and Song & Ermon, 2019, Table 1 quote
it; it comes from the paper's own code, not from this PyTorch script, whose README calls its
in-training Inception metrics monitoring only). What differs: the script has neither a
shared embedding nor a hierarchical latent (no --G_shared, no --hier), which gan_jax's
BigGAN always has, and initialises weights from N(0, 0.02) (--G_init N02 --D_init N02) where
gan_jax's are orthogonal (BigGAN's default). Estimated cost: 125,000 steps x FLOPs per step
(`python -m gan_jax.benchmark --config experiments/biggan.py:cifar10
--config.model.conv_implementation=xla --flops_only`: 3.50 TFLOP per step, jax 0.10.2) at
30% of an H100's 989 TFLOP/s (dense bf16): about 0.41 H100 hours.

python -m gan_jax.main --config experiments/biggan.py --workdir runs/biggan
python -m gan_jax.main --config experiments/biggan.py:cpu --workdir runs/biggan_cpu
python -m gan_jax.sample --workdir runs/biggan_cpu --truncation 0.5 --num_samples 100
python -m gan_jax.main --config experiments/biggan.py:cifar10 --workdir runs/biggan_cifar10
"""
from gan_jax import configs

# ajbrock/BigGAN-PyTorch, scripts/launch_cifar_ema.sh and utils.py's defaults.
CIFAR10 = {
    'dataset': 'cifar10', 'data.image_size': 32,
    'model.width': 256, 'model.d_width': 256, 'model.width_growth': 1,
    'model.d_blocks_without_downsampling': 2, 'model.attention_resolution': 0,
    'model.latent_dim': 128, 'loss': 'hinge', 'n_critic': 4, 'batch_size': 50,
    'num_steps': 125_000, 'orthogonal_reg': 0.0,
    'g_optimizer.learning_rate': 2e-4, 'g_optimizer.b1': 0.0, 'g_optimizer.b2': 0.999,
    'd_optimizer.learning_rate': 2e-4, 'd_optimizer.b1': 0.0, 'd_optimizer.b2': 0.999,
    'g_ema_decay': 0.9999, 'g_ema_start': 1000,
}


def get_config(arg=None):
  config = configs.resnet()
  config.model.name = 'biggan'
  config.model.conditional = True
  config.model.width = config.model.d_width = 256  # BigGAN-PyTorch's ch=64, times 4
  config.n_critic = 4
  config.batch_size = 50
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.b2 = 0.999
  config.orthogonal_reg = 1e-4
  config.num_grid_samples = 100  # 10 rows, one per class
  return configs.apply_preset(config, arg, cpu=configs.RESNET_CPU, cifar10=CIFAR10)

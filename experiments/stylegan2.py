r"""StyleGAN2 (Karras et al., 2020) on Fashion-MNIST resized to 32x32 (or 64x64:
--config.data.image_size=64).

Mapping network (8 layers) to W, modulated convolutions with noise inputs in a skip
generator, a residual discriminator with the minibatch stddev, equalized learning rates,
the non-saturating logistic loss with lazy R1 (gamma 0.1, every 16 steps) and lazy
path-length regularisation (weight 2, every 4 steps), style mixing (90% of batches),
Adam(2.5e-3, 0, 0.99) and an EMA of G. 256 channels (the paper's 512 for 1024x1024 faces;
its CIFAR-10 runs use 512). Sample with the truncation trick in W:
`gan_jax.sample --truncation_psi 0.7`. `:cpu`: narrower, for 45 minutes on 2 CPU cores.

`:cifar10` is CIFAR-10 as NVlabs/stylegan2-ada-pytorch's train.py configures it with
--cfg=cifar (cfg_specs['cifar'] and the lines after it): z and w of 512, 512 channels at
every side up to 32x32 (fmaps 1: channel_base 32768, channel_max 512), a 2-layer mapping
network, batch 64, minibatch-stddev groups of 32, Adam(0.0025, 0, 0.99), lazy R1 with gamma
0.01 every 16 steps (D_reg_interval), no path-length regularisation and no style mixing, an
EMA of G with a half-life of 500,000 images, ramped up as 5% of the images shown (ema_kimg
500, ema_rampup 0.05: g_ema_kimg, g_ema_rampup), and
100,000 kimg: 1,562,500 steps. Published, with ADA: the record FID 2.42 on class-conditional
CIFAR-10 (the paper's abstract: "improve the record FID from 5.59 to 2.42"); unconditional,
FID 3.26 and Inception score 9.74 +- 0.05 (arXiv v1 of the paper, as Ho et al., 2020, Table
1 quote it; the final version's unconditional numbers we could not read). What differs:
gan_jax's StyleGAN2 is unconditional (--cond=1 made the paper's record run); it has no ADA,
so the closest it has stands in: DiffAugment's color,translation,cutout (Zhao et al., 2020;
their CIFAR-10 policy); its D is residual, where cfg cifar uses the 'orig' architecture; the
lazy regularisation does not rescale Adam's rate
and betas by 16/17 (mb_ratio); and it computes in float32 (the reference uses float16 in the
4 highest resolutions). Estimated cost: 1,562,500 steps x FLOPs per step (`python -m
gan_jax.benchmark --config experiments/stylegan2.py:cifar10
--config.model.conv_implementation=xla --flops_only`: 6.40 TFLOP per step, jax 0.10.2; the
steps computing R1, 1 in 16, cost more) at 30% of an H100's 989 TFLOP/s (dense bf16): about
9.4 H100 hours.

python -m gan_jax.main --config experiments/stylegan2.py --workdir runs/stylegan2
python -m gan_jax.main --config experiments/stylegan2.py:cpu --workdir runs/stylegan2_cpu
python -m gan_jax.sample --workdir runs/stylegan2_cpu --truncation_psi 0.7 --num_samples 100
python -m gan_jax.main --config experiments/stylegan2.py:cifar10 --workdir runs/stylegan2_cifar10
"""
from gan_jax import configs

# NVlabs/stylegan2-ada-pytorch, train.py: cfg_specs['cifar'] and what `if cfg == 'cifar'` sets.
CIFAR10 = {
    'dataset': 'cifar10', 'data.image_size': 32,
    'model.width': 512, 'model.latent_dim': 512, 'model.mapping_layers': 2,
    'model.mbstd_group_size': 32, 'model.style_mixing': 0.0,
    'loss': 'non_saturating', 'r1_gamma': 0.01, 'r1_every': 16, 'pl_weight': 0.0,
    'batch_size': 64, 'num_steps': 100_000_000 // 64,
    'g_optimizer.learning_rate': 0.0025, 'g_optimizer.b1': 0.0, 'g_optimizer.b2': 0.99,
    'd_optimizer.learning_rate': 0.0025, 'd_optimizer.b1': 0.0, 'd_optimizer.b2': 0.99,
    'g_ema_decay': 0.0, 'g_ema_kimg': 500.0, 'g_ema_rampup': 0.05, 'g_ema_start': 0,
    'diffaugment': 'color,translation,cutout',  # for ADA, which gan_jax lacks
    'sample_every': 10_000, 'checkpoint_every': 10_000,
}


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
  return configs.apply_preset(config, arg, cpu=cpu, cifar10=CIFAR10)

"""StyleGAN2 networks (as trained by StyleGAN2-ADA) in plain PyTorch.

    generator.py      Generator, build_generator(cfg, c_dim)        mapping.py + synthesis.py
    discriminator.py  Discriminator, build_discriminator(cfg, c_dim)
    weights.py        save_networks / load_networks (safetensors + JSON, no pickles)
    loading.py        load_model / load_latest: a run folder, checkpoints folder or network file
    summary.py        parameter and FLOP counts per block (`heroforge nets summary`)
    ops.py, modconv.py, layers.py   FIR resampling, bias_act, modulated conv, equalised lr

Nothing is imported here, so that importing the commands does not import torch.
"""

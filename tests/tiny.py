"""A very small custom config for fast tests of the model machinery."""
from vos.config import ModelConfig
from vos.hiera import HieraConfig


def tiny_config(image_size: int = 64, **changes) -> ModelConfig:
    trunk = HieraConfig(
        embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,), window_spec=(4, 4, 4, 2),
        window_pos_embed_bkg_spatial_size=(4, 4),
    )
    return ModelConfig(
        name="test_tiny", trunk=trunk, image_size=image_size, d_model=32, mem_dim=8,
        memory_attention_layers=2, memory_attention_ffn=64, fuser_layers=1, decoder_heads=2, decoder_mlp_dim=64,
        **changes,
    )

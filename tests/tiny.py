"""A very small custom config for fast tests of the model machinery."""
from vos.model.config import ModelConfig
from vos.model.hiera import HieraConfig


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


def tiny_tracking_model():
    """The tiny config at 64 px with random weights whose objects are judged present: masks that move
    with the input, for tests of the tracking machinery."""
    from oracle_free import random_state_dict, set_presence

    from vos.model.sam2 import SAM2Model

    model = SAM2Model(tiny_config(image_size=64)).eval()
    model.load_state_dict(random_state_dict(model.state_dict(), seed=3))
    set_presence(model, 2.0)
    return model

"""Which model a tracking job runs: PyTorch's, from a checkpoint, or an ONNX export's on ONNX Runtime, which
defines the model itself. ``vos track`` and ``vos live`` (and the Python API behind them) choose here."""
from __future__ import annotations

import os


def tracking_model(
    checkpoint: str | os.PathLike | None = None,
    *,
    onnx: str | os.PathLike | None = None,
    config: str | None = None,
    image_size: int | None = None,
    precision: str = "float32",
    device: str | None = None,
    everything: bool = False,
    compile: bool = False,
):
    """The model to track with: :class:`~vos.export.runtime.OnnxModel` on the export folder ``onnx``, else
    :func:`~vos.weights.load.load_model` of ``checkpoint`` (default: the embedded model) on ``device``
    (default: the CPU). An ONNX export fixes the model, its precision (float32) and its device (the CPU), so
    asking it for another of those is a ``ValueError``, as is ``everything`` (the automatic mask generator
    it needs is not exported), or ``compile`` (ONNX Runtime optimises the graphs itself)."""
    if onnx is None:
        from ..weights.load import load_model

        return load_model(checkpoint, config=config, image_size=image_size, device=device or "cpu", compile=compile)
    given = [name for name, value in (("--checkpoint", checkpoint), ("--config", config),
                                      ("--image-size", image_size)) if value is not None]
    if given:
        raise ValueError(f"--runtime onnx runs the model exported in {onnx}; {', '.join(given)} cannot change it "
                         "(export the model you want: vos export MODEL --onnx DIR)")
    if precision != "float32":
        raise ValueError(f"--runtime onnx computes in float32; --precision {precision} is for the PyTorch runtime")
    if device not in (None, "cpu"):
        raise ValueError(f"--runtime onnx runs on the CPU (ONNX Runtime's CPU execution provider), not --device {device}")
    if compile:
        raise ValueError("--compile is for the PyTorch runtime (torch.compile); ONNX Runtime optimises the exported graphs itself")
    if everything:
        raise ValueError("--everything needs the automatic mask generator, which is not exported: use the PyTorch runtime")
    from ..export.runtime import OnnxModel

    return OnnxModel(onnx)

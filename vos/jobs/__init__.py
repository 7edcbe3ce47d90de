"""What the commands run, one function per command, for Python as for ``vos``: the command line only parses
its arguments, calls one of these and prints what it returns.

* ``vos info``: :func:`vos.jobs.info.describe_model`; ``vos download``: :func:`vos.weights.hub.download`;
* ``vos track``: :func:`vos.jobs.track.track_video` (``--everything``: :func:`vos.jobs.everything.track_everything`),
  on the model :func:`vos.jobs.model.tracking_model` chooses (PyTorch or an ONNX export);
* ``vos live``: :func:`vos.jobs.live.live`; ``vos segment``: :func:`vos.jobs.segment.segment_images`;
* ``vos eval``: :func:`vos.jobs.evaluate.evaluate`; ``vos demo``: :func:`vos.jobs.demo.demo`;
* ``vos export``: :func:`vos.jobs.export.export_onnx`; ``vos train``: :func:`vos.train.job.train`;
  ``vos app``: :func:`vos.app.server.run_app`.
"""

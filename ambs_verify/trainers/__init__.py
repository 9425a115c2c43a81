"""The training loop and its parts (DESIGN.md §2): everything except the agent math.

* :mod:`.driver` -- steps N envs with a policy, emits replay rows and episode statistics;
* :mod:`.replay` -- uniform sequence replay, persisted in chunks for exact resume;
* :mod:`.checkpoint` -- orbax checkpoints written atomically with a sha256 manifest;
* :mod:`.logger` -- ``metrics.jsonl``, TensorBoard, the progress bar;
* :mod:`.loop` -- :func:`~.loop.train`, which plugs an agent into all of the above.
"""

"""The one training loop and its parts (DESIGN.md §2): everything except the agent math and the acting.

* :mod:`.loop` -- :func:`~.loop.train`: driver -> learner -> updates, logging, checkpoints, resume;
* :mod:`.learners` -- how each agent family learns from the driven steps (sequence or transition replay);
* :mod:`.replay` -- uniform sequence replay, persisted in chunks for exact resume;
* :mod:`.logger` -- ``metrics.jsonl``, TensorBoard, the progress bar;
* :mod:`.health` -- divergence and world-model collapse.
"""

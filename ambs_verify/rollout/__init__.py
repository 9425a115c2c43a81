"""The one place that steps environments with an agent (DESIGN.md §2), under both ``trainers`` and ``reports``.

* :mod:`.driver` -- steps N envs in lockstep with a policy: replay rows and episode statistics;
* :mod:`.acting` -- evaluation episodes, visited states, rollouts from restored simulator states, fixed-step runs;
* :mod:`.agents` -- the agent a config asks for and the environments it acts in;
* :mod:`.restore` -- an agent restored from a run's checkpoint;
* :mod:`.runtime` -- the JAX platform and the persistent compilation cache.
"""

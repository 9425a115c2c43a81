"""The one agent interface: what the training loop, the acting layer and ``certify`` ask of every agent family.

An agent object holds only static things (settings, network definitions, jitted functions); everything that
changes is one ``state`` pytree, returned by ``init`` and ``train`` and passed to ``policy``, so a checkpoint
saves exactly that (the Brax / PureJaxRL convention):

* ``init(rng, obs_space, act_space) -> state``: ``obs_space`` is the keyed ``Dict`` the driver shows
  (:func:`~ambs_verify.rollout.driver.key_observation`);
* ``policy(state, carry, obs, rng, mode=DEPLOYED) -> (action, carry, extras)`` for ``N`` environments at once:
  ``obs`` holds the observation keys plus ``is_first`` / ``is_last`` (each ``(N, ...)``), ``carry`` is the
  policy's memory (None at the start), ``extras`` maps names to ``(N,)`` arrays (the shield's ``p_hat``,
  ``override``; a baseline's ``epsilon``). The policy never changes ``state``;
* ``train(state, batch, rng) -> (state, metrics)``: one update.

``modes`` lists how an agent can act. Every agent has :data:`EXPLORE` (how it acts while it learns) and
:data:`DEPLOYED` (the agent a certificate is about); the DreamerV3 agents add ``task`` and ``safe`` (each policy
alone). :func:`bind` turns an agent and a state into the ``policy(obs, carry, rng)`` a driver steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["DEPLOYED", "EXPLORE", "AgentInterface", "bind", "check_mode"]

EXPLORE = "explore"
DEPLOYED = "deployed"


class AgentInterface(Protocol):
    """What every agent family implements (module docstring)."""

    modes: tuple[str, ...]

    def init(self, rng: Any, obs_space: Any, act_space: Any) -> Any: ...

    def policy(
        self, state: Any, carry: Any, obs: Mapping[str, Any], rng: Any, mode: str = DEPLOYED
    ) -> tuple[Any, Any, Mapping[str, Any]]: ...

    def train(self, state: Any, batch: Mapping[str, Any], rng: Any) -> tuple[Any, Mapping[str, Any]]: ...


def check_mode(modes: tuple[str, ...], mode: str) -> None:
    """One line naming an acting mode the agent does not have, and the ones it has."""
    if mode not in modes:
        raise ValueError(f"unknown acting mode {mode!r}; accepted: {', '.join(modes)}")


def bind(agent: AgentInterface, state: Any, mode: str = DEPLOYED) -> Callable:
    """``policy(obs, carry, rng)`` acting with ``agent`` at ``state`` in ``mode`` (checked now, not at the first
    step): the :data:`ambs_verify.rollout.driver.Policy` a driver steps."""
    check_mode(agent.modes, mode)

    def policy(obs, carry, rng):
        return agent.policy(state, carry, obs, rng, mode)

    return policy

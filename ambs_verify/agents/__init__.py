"""The pure JAX core: networks, RSSM, world model, actor-critic, shield, penalties (DESIGN.md §3)."""

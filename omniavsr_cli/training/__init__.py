"""Training and evaluation of Omni-AVSR (`omniavsr train`, `omniavsr eval`): data, objective, loop, and the
manifests `prep-lips --manifest` writes for them."""

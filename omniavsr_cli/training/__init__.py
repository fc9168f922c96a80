"""Training and evaluation of Omni-AVSR (`omniavsr train`, `omniavsr eval`): data, objective, loop."""

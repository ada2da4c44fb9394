//! The deterministic simulator (feature `sim`): many nodes in one process on a virtual clock.

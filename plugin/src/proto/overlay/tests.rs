//! Unit tests of the overlay core that need no simulator.

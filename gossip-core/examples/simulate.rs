//! Placeholder for the simulator command.

fn main() {}

//! The daemon: wires sources, model, policy, trends and outputs together.

//! The kill-switch: rules over the model, safety checks, and the pidfd-based killer.
//! (Owned by the kill-switch work.)

//! The binary end to end.

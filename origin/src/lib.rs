//! Gatehouse origin.

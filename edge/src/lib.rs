//! Gatehouse edge worker.

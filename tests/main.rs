//! End-to-end tests. One binary; each area is a module.

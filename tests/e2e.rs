//! End-to-end tests: the real genimg binary against a local fake of the Images API.

mod cases;
mod support;

//! Where images end up: the destination (lock, atomic writes, what is there), the manifest,
//! and keeping one image.

pub mod atomic;
pub mod destination;
pub mod manifest;
pub mod sink;

pub use destination::{Destination, OutputError, survey};

//! What a run shows when it is over: `--json` and the gallery.

pub mod gallery;
pub mod json;

//! What a run shows: the dry run's text, `--json` and the gallery.

pub mod dry_run;
pub mod gallery;
pub mod json;
pub mod serve;
pub mod thumbs;

//! Where images end up: the destination (lock, atomic writes, what is there), the manifest,
//! and keeping one image.

pub mod atomic;
pub mod batches;
pub mod destination;
pub mod manifest;
pub mod sink;
pub mod trash;

pub use destination::{Destination, OutputError, survey};

/// The names in `dir`, sorted; none if it cannot be read.
#[cfg(test)]
pub(crate) fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
